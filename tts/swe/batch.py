"""Many instances at once: every instance in flight together, rollouts bounded across all of them,
with the core's progress display (`tts.report.counting_bars`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tts.backend import Backend
from tts.context import RunContext, SamplingDefaults
from tts.errors import UsageError
from tts.swe.executor import on_executor
from tts.swe.instance import SWEInstance
from tts.swe.results import Event, SWEResult
from tts.swe.rundir import RunDir
from tts.swe.runners import AgentRunner

if TYPE_CHECKING:
    from tts.swe.pipeline import AgenticPDR


async def run_instances(strategy: AgenticPDR, instances: Sequence[SWEInstance], runner: AgentRunner,
                        backend: Backend | None = None, *, backends: dict[str, Backend] | None = None,
                        rundir: RunDir | str | None = None, max_rollouts_in_flight: int = 16, seed: int = 0,
                        progress: bool = True, defaults: SamplingDefaults | None = None,
                        executor: Any = None) -> list[SWEResult]:
    """Every instance in flight together; at most `max_rollouts_in_flight` rollouts run at once
    across all of them. A failing instance gets a result with `error` set; the others go on.
    `executor` (tts.swe.executor) says where rollouts run, e.g. a `RayExecutor`; default: here."""
    rd = RunDir(rundir) if isinstance(rundir, str) else rundir
    runner = on_executor(runner, executor)
    limiter = asyncio.Semaphore(max_rollouts_in_flight)
    total = len(instances) * strategy.rollouts * strategy.rounds
    with rollout_bars(len(instances), total, disable=not progress) as on_event:
        async def one(inst: SWEInstance) -> SWEResult:
            ctx = RunContext(backend, backends=backends, seed=seed, path=f"swe/{inst.instance_id}",
                             defaults=defaults or SamplingDefaults(temperature=0.7, max_tokens=2048))
            try:
                return await strategy.run_instance(inst, runner, ctx=ctx, rundir=rd, limiter=limiter,
                                                   on_event=on_event)
            except UsageError:
                raise
            except Exception as exc:
                on_event("instance", inst.instance_id)
                return SWEResult(instance_id=inst.instance_id, usage=ctx.usage, error=f"{type(exc).__name__}: {exc}")

        return list(await asyncio.gather(*(one(i) for i in instances)))


@contextmanager
def rollout_bars(n_instances: int, n_rollouts: int, *, disable: bool) -> Iterator[Event]:
    """Two bars, instances and rollouts; yields `on_event(kind, instance_id)` that advances them."""
    from tts.report import counting_bars

    with counting_bars({"instances": n_instances, "rollouts": n_rollouts}, disable=disable) as (progress, ids):
        def on_event(kind: str, iid: str) -> None:
            progress.advance(ids["instances"] if kind == "instance" else ids["rollouts"])

        yield on_event

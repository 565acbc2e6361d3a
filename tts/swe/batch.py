"""Many instances at once, on the core's runner (`tts.run.run_many`, `RunResult`): every instance in
flight together, rollouts bounded across all of them, with the core's progress display
(`tts.display.progress.counting_bars`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tts.context import RunContext, SamplingDefaults
from tts.errors import UsageError
from tts.records import Candidate, RunResult, Task
from tts.seam import Backend
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
    """Every instance in flight together (through the core's `tts.run.run_many`); at most
    `max_rollouts_in_flight` rollouts run at once across all of them. A failing instance gets a result with
    `error` set; the others go on. `executor` (tts.swe.executor) says where rollouts run, e.g. a
    `RayExecutor`; default: here."""
    from tts.run import run_many

    plan = InstancePlan(strategy, instances, on_executor(runner, executor), RunDir(rundir) if isinstance(
        rundir, str) else rundir, asyncio.Semaphore(max_rollouts_in_flight), seed)
    total = len(instances) * strategy.rollouts * strategy.rounds
    with rollout_bars(len(instances), total, disable=not progress) as on_event:
        plan.on_event = on_event
        results = await run_many(plan, [i.as_task() for i in instances], backend, backends=backends,  # type: ignore[arg-type]
                                 defaults=defaults or SamplingDefaults(temperature=0.7, max_tokens=2048),
                                 progress=False)
    return [swe_result_of(r) for r in results]


class InstancePlan:
    """One `run_instances` call as the core runner sees a strategy: `solve(task, ctx)` runs AgenticPDR on
    the task's instance. It holds the run's own state (runner, run dir, the shared rollout bound), so it
    lives for one call and is never configuration."""

    name = "swe"
    """The root of every call's path: an instance's calls are under `swe/<instance id>`."""

    def __init__(self, strategy: AgenticPDR, instances: Sequence[SWEInstance], runner: AgentRunner,
                 rundir: RunDir | None, limiter: asyncio.Semaphore, seed: int) -> None:
        self.strategy, self.runner, self.rundir, self.limiter, self.seed = strategy, runner, rundir, limiter, seed
        self.instances = {i.instance_id: i for i in instances}
        self.on_event: Event = lambda kind, iid: None

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        inst = self.instances[task.id]
        ictx = ctx.child(inst.instance_id)
        # `seed` seeds the random streams (tournament groups), not sampling: no seed is sent to the judge's
        # provider (some refuse one), as before the swe layer ran on the core's runner.
        ictx.seed = self.seed
        try:
            res = await self.strategy.run_instance(inst, self.runner, ctx=ictx, rundir=self.rundir,
                                                   limiter=self.limiter, on_event=self.on_event)
        except UsageError:
            raise
        except Exception as exc:  # this instance failed; the others go on
            self.on_event("instance", inst.instance_id)
            res = SWEResult(instance_id=inst.instance_id, usage=ictx.usage, error=f"{type(exc).__name__}: {exc}")
        return run_result_of(res, task)

    def partial(self, task: Task, ctx: RunContext) -> RunResult:  # solve never raises what the runner catches
        return run_result_of(SWEResult(instance_id=task.id, usage=ctx.usage, error="stopped"), task)


def run_result_of(res: SWEResult, task: Task) -> RunResult:
    """An instance's result as a core `RunResult`: the patch is the answer, the chosen rollout the chosen
    candidate, the SWE figures in `metadata["swe"]`."""
    chosen = [Candidate(id=res.chosen_id, text=res.patch or "", answer=res.patch)] if res.chosen_id else []
    return RunResult(task_id=task.id, strategy="agentic-pdr", answer=res.patch, chosen=chosen, usage=res.usage,
                     status="error" if res.error else "ok", error=res.error,
                     metadata={"swe": res.model_dump(mode="json")})


def swe_result_of(res: RunResult) -> SWEResult:
    return SWEResult.model_validate(res.metadata["swe"])


@contextmanager
def rollout_bars(n_instances: int, n_rollouts: int, *, disable: bool) -> Iterator[Event]:
    """Two bars, instances and rollouts; yields `on_event(kind, instance_id)` that advances them."""
    from tts.display.progress import counting_bars

    with counting_bars({"instances": n_instances, "rollouts": n_rollouts}, disable=disable) as (progress, ids):
        def on_event(kind: str, iid: str) -> None:
            progress.advance(ids["instances"] if kind == "instance" else ids["rollouts"])

        yield on_event

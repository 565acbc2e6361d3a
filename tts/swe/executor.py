"""Where rollouts and evaluations run: the executor seam.

    Executor        the protocol: `await ex.rollout(runner, instance, prior, rollout_id=...) -> Trajectory`
                    and `await ex.call(fn, *args) -> fn(*args)` (a synchronous job, e.g. grading one
                    instance), both bounded in flight; `await ex.aclose()`
    LocalExecutor   this process: rollouts as coroutines, calls in threads (the default)
    RayExecutor     one Ray task per rollout or call, anywhere on a Ray cluster (tts.swe.ray_executor)
    on_executor     an `AgentRunner` that runs its rollouts through an executor, so the strategies in
                    `tts.swe.pipeline` do not change: only where a rollout runs

The driver keeps the run directory: whatever the executor, a finished rollout comes back here and
the pipeline writes it (no shared filesystem needed), so a rerun skips it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from tts.errors import ConfigError
from tts.records import Trajectory, TrajectorySummary
from tts.swe.instance import SWEInstance
from tts.swe.runners import AgentRunner

T = TypeVar("T")


@runtime_checkable
class Executor(Protocol):
    async def rollout(self, runner: AgentRunner, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                      rollout_id: str = "r0") -> Trajectory: ...

    async def call(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def aclose(self) -> None: ...


class LocalExecutor:
    """Rollouts in this process's event loop, calls in worker threads; at most `max_in_flight` of
    each at once."""

    kind = "local"

    def __init__(self, max_in_flight: int = 16, max_calls_in_flight: int = 4) -> None:
        if max_in_flight < 1 or max_calls_in_flight < 1:
            raise ConfigError("an executor needs at least 1 rollout and 1 call in flight")
        self.max_in_flight = max_in_flight
        self._rollouts = asyncio.Semaphore(max_in_flight)
        self._calls = asyncio.Semaphore(max_calls_in_flight)

    async def start(self) -> LocalExecutor:
        return self

    async def rollout(self, runner: AgentRunner, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                      rollout_id: str = "r0") -> Trajectory:
        async with self._rollouts:
            return await runner.run(instance, prior, rollout_id=rollout_id)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._calls:
            return await asyncio.to_thread(fn, *args)

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> LocalExecutor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class ExecutorRunner:
    """An `AgentRunner` whose rollouts run through `executor` (see `on_executor`)."""

    def __init__(self, runner: AgentRunner, executor: Executor) -> None:
        self.runner = runner
        self.executor = executor

    async def run(self, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                  rollout_id: str = "r0") -> Trajectory:
        return await self.executor.rollout(self.runner, instance, prior, rollout_id=rollout_id)

    async def aclose(self) -> None:
        """Close the wrapped runner (the executor is its owner's to close)."""
        close = getattr(self.runner, "aclose", None)
        if close is not None:
            await close()


def on_executor(runner: AgentRunner, executor: Executor | None) -> AgentRunner:
    """`runner` itself for no executor, else a runner whose rollouts go through it."""
    return runner if executor is None else ExecutorRunner(runner, executor)


# -- flag values ----------------------------------------------------------------------------------
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30,
          "gib": 2**30, "ti": 2**40, "tib": 2**40}


def parse_memory(text: str | int | None) -> int | None:
    """Bytes from `4GiB`, `512MB`, `2G`, `1073741824`; None stays None."""
    if text is None or isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"memory {text!r} is not a size: write e.g. 4GiB, 512MB or a number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_resources(items: Sequence[str] | None) -> dict[str, float]:
    """`["docker=1", "gpu_big=0.5", "ssd"]` -> {"docker": 1.0, "gpu_big": 0.5, "ssd": 1.0}."""
    out: dict[str, float] = {}
    for item in items or ():
        name, _, amount = item.partition("=")
        name = name.strip()
        try:
            value = float(amount) if amount else 1.0
        except ValueError:
            value = -1.0
        if not name or value <= 0:
            raise ConfigError(f"resource {item!r} is not NAME=AMOUNT with a positive amount (e.g. docker=1)")
        out[name] = value
    return out

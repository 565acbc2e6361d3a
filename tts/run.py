"""Running strategies on tasks: one task, many tasks concurrently, and a sync helper for scripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from tts.answers import extract_answer, is_correct
from tts.backend import Backend
from tts.context import RunContext, SamplingDefaults
from tts.errors import BackendError, BudgetExceeded
from tts.records import CallRecord, Candidate, RunResult, Task

if TYPE_CHECKING:
    from tts.strategies.base import Strategy

T = TypeVar("T")


def as_task(task: Task | str, index: int = 0) -> Task:
    return task if isinstance(task, Task) else Task(id=f"task{index}", prompt=task)


async def run_task(
    strategy: Strategy,
    task: Task | str,
    backend: Backend,
    *,
    backends: dict[str, Backend] | None = None,
    defaults: SamplingDefaults | None = None,
    seed: int = 0,
    on_call: Callable[[CallRecord], None] | None = None,
) -> RunResult:
    """Run `strategy` on one task. A budget cap ends the run with status `budget_exceeded` and
    whatever was completed; a backend failure that outlived its retries ends it with `error`."""
    task = as_task(task)
    ctx = RunContext(backend, backends=backends, defaults=defaults, seed=seed, path=strategy.name, on_call=on_call)
    started = time.perf_counter()
    try:
        res = await strategy.solve(task, ctx)
    except BudgetExceeded as exc:
        partial = [Candidate(id=f"partial{i}", text=c.text, answer=extract_answer(c.text, strategy.answer_format),
                             usage=c.usage) for i, c in enumerate(ctx.completions)]
        res = RunResult(task_id=task.id, strategy=strategy.name, status="budget_exceeded", error=str(exc),
                        candidates=partial)
        exc.partial = res
    except BackendError as exc:
        res = RunResult(task_id=task.id, strategy=strategy.name, status="error", error=f"{type(exc).__name__}: {exc}")
    return res.model_copy(update={
        "usage": ctx.usage,
        "trace": list(ctx.records),
        "wall_s": time.perf_counter() - started,
        "correct": is_correct(res.answer, task.answer),
    })


async def run_many(
    strategy: Strategy,
    tasks: Iterable[Task | str],
    backend: Backend,
    *,
    on_result: Callable[[RunResult], Any] | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> list[RunResult]:
    """All tasks in flight together; the backend's throttle bounds the calls. Results in task order.
    `progress`: a live progress bar (default: on in Jupyter, off elsewhere)."""
    from contextlib import nullcontext

    from tts.report import in_notebook, progress_bar

    tasks = list(tasks)
    show = in_notebook() if progress is None else progress
    with progress_bar(len(tasks)) if show else nullcontext(lambda res: None) as advance:

        async def one(i: int, t: Task | str) -> RunResult:
            res = await run_task(strategy, as_task(t, i), backend, **kwargs)
            if on_result is not None:
                on_result(res)
            advance(res)
            return res

        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks))))


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run a coroutine from a plain script. In Jupyter, use `await` directly instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(awaitable)  # type: ignore[arg-type]
    raise RuntimeError("run_sync() was called inside a running event loop (Jupyter?): use `await` instead")

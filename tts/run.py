"""Running strategies on tasks: one task, many tasks concurrently, and a sync helper for scripts."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from tts.answers import is_correct
from tts.code.code_task import is_code_task, passes_task_tests
from tts.context import RunContext, SamplingDefaults, defaults_for
from tts.errors import BackendError, BudgetExceeded, ConfigError, TaskDataError
from tts.records import CallRecord, RunResult, RunStatus, Task
from tts.redact import redact
from tts.registry import components
from tts.seam import Backend
from tts.tool_calls import text_only, turn_params, wants_json

if TYPE_CHECKING:
    from tts.strategies.base import Strategy

T = TypeVar("T")


def as_task(task: Task | str, index: int = 0) -> Task:
    return task if isinstance(task, Task) else Task(id=f"task{index}", prompt=task)


def seeded(defaults: SamplingDefaults | None, seed: int | None) -> SamplingDefaults:
    """The sampling defaults of a run with `seed`: one seed for sampling and every random stream."""
    defaults = defaults or SamplingDefaults()
    if seed is None:
        return defaults
    if defaults.seed is not None and defaults.seed != seed:
        raise ConfigError(f"seed={seed} and defaults.seed={defaults.seed} disagree: give one seed (it seeds "
                          f"sampling and every random stream of the run)")
    return defaults.model_copy(update={"seed": seed})


async def run_task(
    strategy: Strategy,
    task: Task | str,
    backend: Backend,
    *,
    backends: dict[str, Backend] | None = None,
    defaults: SamplingDefaults | None = None,
    seed: int | None = None,
    on_call: Callable[[CallRecord], None] | None = None,
    timeout: float | None = None,
    cancel: asyncio.Event | None = None,
    trace: bool = True,
    turn: dict[str, Any] | None = None,
    trace_content: bool = False,
) -> RunResult:
    """Run `strategy` on one task.

    An agent turn (a task with `tools`, `tool_choice`, `response_format`) reaches every call that
    answers the task (samples, drafts, refinements) and no other (judges, distills, summaries);
    `turn` adds call parameters of the same reach (`tts serve` passes its client's sampling
    parameters). A strategy that answers in text only refuses such a task with a ConfigError
    before any call is made.

    `seed` seeds sampling (sample i gets seed + i, see `SamplingDefaults.seed`) and every random
    stream of the strategy (tie-breaks, shuffles); the same as `defaults.seed`. `timeout`: seconds
    for the whole task; `cancel`: an event that stops it when set. `trace=False`: the result
    carries no call records (`trace` is empty; usage and paid stay exact), for large batches that
    need only answers and totals. `trace_content=True`: each call record also keeps the messages
    it sent and the reply (for `tts view`; a trace file stores each distinct message once).

    A run that does not finish still returns: a budget cap (status `budget_exceeded`), a backend
    failure that outlived its retries (`error`), the timeout (`timeout`) or the cancel event
    (`cancelled`). Calls already answered are counted in `usage`/`paid` (on a cap or an error the
    calls in flight are let finish, since they are paid for), and the answer comes from the real
    candidates so far by the strategy's own rule (`Strategy.partial`).
    """
    task = as_task(task)
    check_answers_turn(strategy, task)
    defaults = defaults_for(seeded(defaults, seed), strategy)
    ctx = RunContext(backend, backends=backends, defaults=defaults, seed=defaults.seed or 0, path=strategy.name,
                     on_call=on_call, turn=turn_params(task, turn) if task.tools or task.response_format or turn
                     else None)
    ctx.content = trace_content
    started = time.perf_counter()
    status: RunStatus = "ok"
    error: str | None = None
    budget: BudgetExceeded | None = None
    res: RunResult | None = None
    try:
        res = await _until_stopped(strategy.solve(task, ctx), timeout, cancel)
    except BudgetExceeded as exc:
        status, error, budget = "budget_exceeded", str(exc), exc
    except BackendError as exc:
        status, error = "error", f"{type(exc).__name__}: {exc}"
    except TaskDataError as exc:  # this task's own data: fail it, not the run
        status, error = "error", f"{type(exc).__name__}: {exc}"
    except _Stopped as exc:
        status, error = exc.status, exc.message
    if res is None:
        ctx.stop(error or status)
        await ctx.drained()  # answered calls in flight are paid for: wait for them and count them
        res = strategy.partial(task, ctx).model_copy(update={"status": status, "error": error and redact(error)})
        if budget is not None:
            budget.partial = res
    return res.model_copy(update={
        "usage": ctx.usage,
        "paid": ctx.paid,
        "trace": ctx.records if trace else [],  # the run's own list: no copy
        "wall_s": time.perf_counter() - started,
        "correct": await passes_task_tests(task, res.best) if is_code_task(task) and task.answer is None
        else is_correct(res.answer, task.answer),
    })


def check_answers_turn(strategy: Any, task: Task) -> None:
    """ConfigError when `task` is an agent turn (tools, a JSON format) and a component of `strategy`
    answers in text only (solver-grader, conjecture extraction): nothing is silently dropped."""
    if not (task.tools or wants_json(task)):
        return
    for part in components(strategy):
        if "text-only" in part.needs():
            text_only(task, getattr(part, "name", type(part).__name__),
                      "pdr, sequential-refinement, self-consistency, best-of-n or rtv")


class _Stopped(Exception):
    def __init__(self, status: RunStatus, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _until_stopped(solve: Awaitable[RunResult], timeout: float | None,
                         cancel: asyncio.Event | None) -> RunResult:
    """`await solve`, unless `timeout` passes or `cancel` is set first: then `solve` is cancelled
    (its calls in flight are abandoned) and `_Stopped` says why."""
    if timeout is None and cancel is None:
        return await solve
    job = asyncio.ensure_future(solve)
    stopper = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    try:
        done, _ = await asyncio.wait({job} | ({stopper} if stopper else set()), timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        job.cancel()
        raise
    finally:
        if stopper is not None:
            stopper.cancel()
    if job in done:
        return job.result()
    job.cancel()
    await asyncio.wait({job})
    if stopper is not None and stopper in done:
        raise _Stopped("cancelled", "cancelled: the run's cancel event was set")
    raise _Stopped("timeout", f"timeout: the task did not finish within {timeout:g} s")


async def run_many(
    strategy: Strategy,
    tasks: Iterable[Task | str],
    backend: Backend,
    *,
    on_result: Callable[[RunResult], Any] | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> list[RunResult]:
    """Every task, concurrently; results in task order. `progress`: a live progress bar (default:
    on in Jupyter, off elsewhere). Options of `run_task` (seed, timeout, trace, ...) apply to each.

    Tasks start in order, as many as keep the backend busy: while its throttle has fewer calls
    queued than slots, the next task starts, so every slot that frees finds a call waiting and a
    batch of any size holds only the tasks under way in memory (a backend without a throttle
    gets every task at once)."""
    from contextlib import nullcontext

    from tts.prompts import warm
    from tts.seam import BackendWrapper
    from tts.wrappers.throttle import ThrottleBackend

    preflight(backend, kwargs.get("backends"), seeded(kwargs.get("defaults"), kwargs.get("seed")))
    warm(components(strategy))  # templates compiled before the first wave, not between two waves of calls
    throttle = backend.find(ThrottleBackend) if isinstance(backend, BackendWrapper) else None

    tasks = list(tasks)
    show = progress
    if show is None and "IPython" in sys.modules:  # the display is imported only where it may show
        from tts.display.progress import in_notebook

        show = in_notebook()
    if show:
        from tts.display.progress import progress_bar
    with progress_bar(len(tasks)) if show else nullcontext(lambda res: None) as advance:

        async def one(i: int, t: Task | str) -> RunResult:
            res = await run_task(strategy, as_task(t, i), backend, **kwargs)
            if on_result is not None:
                on_result(res)
            advance(res)
            return res

        if throttle is None:
            with fewer_collections():
                return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks))))
        started: list[asyncio.Future[RunResult]] = []
        with fewer_collections():
            try:
                for i, t in enumerate(tasks):
                    await throttle.until_room()
                    if started and started[-1].done() and not started[-1].cancelled() and started[-1].exception():
                        break  # a task failed outside run_task's own handling: gather raises it below
                    started.append(asyncio.ensure_future(one(i, t)))
                    await asyncio.sleep(0)  # let it queue its first calls before the next one is weighed
                return list(await asyncio.gather(*started))
            finally:
                for f in started:
                    if not f.done():
                        f.cancel()


_relaxed = 0
_thresholds: tuple[int, ...] = ()
YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections while a batch runs (CPython's default: 700).
Every call allocates a few hundred objects that live for its latency, so at the default the
collector runs every call or two and promotes them all; measured on 32,000 calls this halved
the CPU per call (benchmarks/scale.py)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """While a batch runs, collect the young generation every `YOUNG_THRESHOLD` allocations
    instead of CPython's 700 (never lowering a threshold the user set higher); the thresholds are
    put back when the last batch running ends. Garbage is still collected, only in larger steps."""
    global _relaxed, _thresholds
    if _relaxed == 0:
        _thresholds = gc.get_threshold()
        if _thresholds and _thresholds[0] and _thresholds[0] < YOUNG_THRESHOLD:  # 0: the user turned it off
            gc.set_threshold(YOUNG_THRESHOLD, *_thresholds[1:])
    _relaxed += 1
    try:
        yield
    finally:
        _relaxed -= 1
        if _relaxed == 0 and gc.get_threshold()[0] == YOUNG_THRESHOLD != _thresholds[0]:
            gc.set_threshold(*_thresholds)


def preflight(backend: Backend, backends: dict[str, Backend] | None, defaults: SamplingDefaults) -> None:
    """One line each, before any call, for what a budget cap of these backends cannot bound."""
    from tts.seam import BackendWrapper
    from tts.wrappers.accounting import AccountingBackend

    for b in (backend, *(backends or {}).values()):
        acct = b.find(AccountingBackend) if isinstance(b, BackendWrapper) else None
        if acct is not None and acct.capped:
            acct.preflight(defaults.max_tokens)


def run_sync(awaitable: Awaitable[T], *, uvloop: bool = False) -> T:
    """Run a coroutine from a plain script. In Jupyter, use `await` directly instead.
    `uvloop=True` runs it on uvloop's event loop (the `uvloop` extra: `pip install 'tts-scaling[uvloop]'`),
    which spends less CPU per call; the default is asyncio's own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if uvloop:
            with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
                return runner.run(awaitable)  # type: ignore[arg-type]
        return asyncio.run(awaitable)  # type: ignore[arg-type]
    raise RuntimeError("run_sync() was called inside a running event loop (Jupyter?): use `await` instead")


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's `new_event_loop`, for `asyncio.Runner(loop_factory=...)`; ConfigError when it is not installed."""
    try:
        import uvloop
    except ImportError:
        raise ConfigError("uvloop=True needs uvloop: pip install 'tts-scaling[uvloop]' (or leave uvloop off)") from None
    return uvloop.new_event_loop

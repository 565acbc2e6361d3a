"""One tool call of `tts mcp`: its own budget, progress notifications, cancellation, and errors that
say what happened without quoting a secret.

- The server-wide caps (`--max-calls`, `--max-tokens-total`, `--max-cost`) live in the backend
  stack; a call's own `budget` is one more AccountingBackend around it for that call alone.
- Each answered model call is a progress notification (when the client asked for progress).
- When the client cancels, the run is stopped (`RunContext.stop`): calls in flight finish and are
  counted, none is sent after; the strategy runs in its own task so the client's cancellation
  does not abandon calls that are already paid for. A call of the run still queued in the
  throttle (or waiting for a retry) when it stops is not sent either (`ChatRequest.halted`,
  checked by the accounting layer at the moment the call would go to the model).
- A spent budget, a failed model call or a bad spec is a `ToolError`: the client sees one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import Field

from tts.context import RunContext, SamplingDefaults
from tts.errors import BackendError, BudgetExceeded, TTSError
from tts.records import Record, Usage
from tts.redact import redact
from tts.seam import Backend, BackendWrapper

log = logging.getLogger("tts.mcp")
T = TypeVar("T")
CANCELLED = "cancelled by the client"


class Budget(Record):
    """Caps for one tool call, on top of the server's own caps."""

    max_calls: int | None = Field(None, ge=1, description="at most this many model calls for this tool call")
    max_tokens: int | None = Field(None, ge=1, description="at most this many tokens (prompt + completion)")
    max_cost: float | None = Field(None, gt=0, description="at most this many USD at list price")


class ToolFailure(TTSError):
    """What the tool call reports as its error (one line, secrets already removed)."""


@dataclass
class Service:
    """What every tool call shares: the server's backends (with the server-wide caps), its default
    strategy, sampling defaults for a strategy, the seed, and the secrets to keep out of text."""

    backend: Backend
    backends: dict[str, Backend]
    strategy: Any
    defaults_for: Callable[[list[Any]], SamplingDefaults]
    seed: int = 0
    redact: Callable[[Any], str] = redact

    def server_usage(self) -> Usage:
        acct = _accounting(self.backend)
        return acct.usage if acct is not None else Usage()


def _accounting(backend: Backend) -> Any:
    from tts.wrappers.accounting import AccountingBackend

    return backend.find(AccountingBackend) if isinstance(backend, BackendWrapper) else None


def budgeted(backend: Backend, backends: dict[str, Backend],
             budget: Budget | None) -> tuple[Backend, dict[str, Backend]]:
    """The backends of one call: the server's, inside one more ledger with the call's own caps."""
    if budget is None or (budget.max_calls is None and budget.max_tokens is None and budget.max_cost is None):
        return backend, backends
    from tts.wrappers.accounting import AccountingBackend

    main = AccountingBackend(backend, max_calls=budget.max_calls, max_tokens=budget.max_tokens,
                             max_cost_usd=budget.max_cost)
    return main, {k: AccountingBackend(b, shared=main) for k, b in backends.items()}


def check_server_budget(service: Service) -> None:
    """A ToolFailure when the server's caps are already reached: no call of this tool could be sent."""
    acct = _accounting(service.backend)
    reason = acct.over_cap() if acct is not None else None
    if reason is not None:
        raise ToolFailure(f"budget spent: the server's {reason}; no call was sent. Restart tts mcp with a larger "
                          f"--max-calls / --max-tokens-total / --max-cost to continue")


async def run_tool(service: Service, name: str, job: Callable[[RunContext], Awaitable[T]], *,
                   budget: Budget | None, defaults: SamplingDefaults, progress: Any = None,
                   on_spent: Callable[[RunContext], str] | None = None) -> tuple[T, RunContext]:
    """Run `job` in a fresh RunContext over the call's backends; (its value, the context).

    `progress`: the MCP request context (its `report_progress`), or None. `on_spent(ctx)`: a line
    about what the run had when a budget stopped it (the partial answer)."""
    import anyio

    check_server_budget(service)
    backend, backends = budgeted(service.backend, service.backends, budget)
    reports: set[asyncio.Future[Any]] = set()
    answered = 0

    def on_call(rec: Any) -> None:
        nonlocal answered
        if rec.error is not None or ctx.root.stopped == CANCELLED or progress is None:
            return
        answered += 1
        task = asyncio.ensure_future(progress.report_progress(answered, None, f"{answered} model calls answered "
                                                                               f"(last: {rec.role})"))
        reports.add(task)
        task.add_done_callback(_settled(reports))

    ctx = RunContext(backend, backends=backends, defaults=defaults, seed=service.seed, path=name, on_call=on_call)
    work = asyncio.ensure_future(job(ctx))  # its own task: a cancelled client call does not abandon it
    try:
        value = await asyncio.shield(work)
    except asyncio.CancelledError:
        ctx.stop(CANCELLED)
        for task in reports:
            task.cancel()
        with anyio.CancelScope(shield=True):  # the calls in flight are paid for: let them finish, count them
            await asyncio.wait({work})
            await ctx.drained()
        if not work.cancelled():
            work.exception()  # retrieved: it is the stop, not news
        log.info("%s: cancelled by the client; %d calls answered (%d tokens) before the stop, none sent after",
                 name, ctx.usage.calls, ctx.usage.total_tokens)
        raise
    except BudgetExceeded as exc:
        ctx.stop(str(exc))
        await ctx.drained()
        have = on_spent(ctx) if on_spent is not None else ""
        reason = str(exc).removeprefix("budget: ")
        raise ToolFailure(service.redact(f"budget spent: {reason}. {_usage_line(ctx)}{have}")) from None
    except BackendError as exc:
        ctx.stop(str(exc))
        await ctx.drained()
        raise ToolFailure(service.redact(f"model call failed: {type(exc).__name__}: {exc}. {_usage_line(ctx)}")) \
            from None
    finally:
        if reports:
            await asyncio.gather(*reports, return_exceptions=True)
    return value, ctx


def _settled(reports: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def done(task: asyncio.Future[Any]) -> None:
        reports.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a closed stream: progress is best effort
            log.debug("progress notification failed: %s", task.exception())
    return done


def _usage_line(ctx: RunContext) -> str:
    u = ctx.usage
    return f"This call used {u.calls} model calls, {u.total_tokens} tokens, ${u.cost_usd:.6f}."


def usage_report(ctx: RunContext, service: Service) -> dict[str, Any]:
    """The figures a result carries: this call's usage (cache hits included), what it paid, and
    the server's running total (what it has paid since it started)."""
    return {"usage": ctx.usage.model_dump(), "paid": ctx.paid.model_dump(),
            "server_total": service.server_usage().model_dump()}

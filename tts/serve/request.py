"""Running one `tts serve` request: its layers over the shared stacks (the request's budget,
progress), its sampling defaults, its trace file, the run itself, and what an error becomes on
the wire. The answer, a stopped run's included, is the strategy's own (`RunResult.best`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tts.context import SamplingDefaults
from tts.errors import AuthError, BackendError, BudgetExceeded, ConfigError, PermanentError
from tts.records import RunResult
from tts.seam import Backend
from tts.serve.conversation import Progress, ProgressBackend
from tts.serve.convert import Budget, ServeRequest, client_turn
from tts.serve.respond import error_body


def request_layers(sreq: ServeRequest, backend: Backend, backends: dict[str, Backend],
                   progress: Progress) -> tuple[Backend, dict[str, Backend]]:
    """The per-request layers over the shared stacks: this request's budget (one ledger for
    every role), then progress counting."""
    roles = {"default": backend, **backends}
    if sreq.budget is not None:
        roles = with_budget(roles, sreq.budget)
    wrapped = {role: ProgressBackend(b, progress) for role, b in roles.items()}
    default = wrapped.pop("default")
    return default, wrapped


def request_defaults(base: SamplingDefaults, sreq: ServeRequest) -> SamplingDefaults:
    """The server's defaults with the request's seed (what the strategy needs, e.g. logprobs, is
    added by `run_task` from the strategy itself)."""
    return base if sreq.seed is None else base.model_copy(update={"seed": sreq.seed})


async def run_request(sreq: ServeRequest, strategy: Any, model: str, backend: Backend, progress: Progress,
                      trace_id: str, *, backends: dict[str, Backend], defaults: SamplingDefaults,
                      trace_dir: Path | None) -> tuple[RunResult | None, BaseException | None]:
    """The strategy on the request's task: its result (None when nothing was chosen) and the error to answer
    with, if any. The trace needs no redaction of its own: every line it writes goes through `tts.redact`."""
    from tts.run import run_task

    default, roles = request_layers(sreq, backend, backends, progress)
    trace = open_trace(trace_dir, trace_id, sreq, strategy, model)
    live = trace.callback(sreq.task.id) if trace is not None else None
    failure: list[BaseException] = []

    def on_call(rec: Any) -> None:
        progress.record(rec)
        if live is not None:
            live(rec)

    try:
        run_defaults = request_defaults(defaults, sreq)
        result = await run_task(strategy, sreq.task, default, backends=roles, defaults=run_defaults,
                                seed=run_defaults.seed or 0, on_call=on_call, turn=client_turn(sreq.params))
    except BudgetExceeded as exc:  # raised outside a strategy's own handling: nothing was chosen
        result, failure = None, [exc]
    except ConfigError as exc:  # found while running, e.g. a selector that needs logprobs upstream did not give
        result, failure = None, [exc]
    if trace is not None:
        if result is not None:
            trace.write_result(result)
        trace.close()
    if result is not None and result.status == "error":
        failure = [progress.error or BackendError(result.error or "upstream call failed")]
    elif result is not None and result.best is None:
        failure = [BudgetExceeded(result.error or "budget reached") if result.status == "budget_exceeded"
                   else BackendError("the strategy produced no answer")]
    return result, (failure[0] if failure else None)


def open_trace(trace_dir: Path | None, trace_id: str, sreq: ServeRequest, strategy: Any, model: str) -> Any:
    if trace_dir is None:
        return None
    from tts.trace import TraceWriter

    return TraceWriter(trace_dir / f"{trace_id}.jsonl", meta={
        "endpoint": "tts serve /v1/chat/completions", "trace_id": trace_id, "model": model,
        "strategy": strategy.model_dump(mode="json"), "stream": sreq.stream,
        "budget": sreq.budget.model_dump() if sreq.budget else None})


def classify_error(error: BaseException, redact: Callable[[Any], str]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI-shaped error body for a failed request."""
    msg = redact(error)
    if isinstance(error, ConfigError):
        return 400, error_body(f"the strategy cannot answer this request: {msg}", code="strategy_config")
    if isinstance(error, BudgetExceeded):
        return 429, error_body(f"budget: {msg}", kind="insufficient_quota", code="budget_exceeded")
    if isinstance(error, AuthError):  # the server's upstream credentials, not the client's
        return 502, error_body(f"the upstream model rejected this server's credentials: {msg}",
                               kind="upstream_error", code="upstream_auth")
    status = getattr(error, "status", None)
    if isinstance(error, PermanentError) and isinstance(status, int) and 400 <= status < 500:
        return status, error_body(f"upstream refused the request: {msg}", code="upstream_rejected")
    return 502, error_body(f"upstream call failed after retries: {msg}", kind="upstream_error",
                           code="upstream_failed")


def with_budget(roles: dict[str, Backend], budget: Budget) -> dict[str, Backend]:
    """Each role's stack under one per-request ledger: the default role's holds the caps, the
    others share it, so judges and samples spend from the same request budget."""
    from tts.wrappers.accounting import AccountingBackend

    ledger = AccountingBackend(roles["default"], max_calls=budget.max_calls, max_tokens=budget.max_tokens,
                               max_cost_usd=budget.max_cost)
    out: dict[str, Backend] = {"default": ledger}
    for role, b in roles.items():
        if role != "default":
            out[role] = AccountingBackend(b, shared=ledger)
    return out


def planned(strategy: Any, field: str) -> int | None:
    """The top-level strategy's `n` (samples) or `rounds`, when it has one, for progress lines."""
    value = getattr(strategy, field, None)
    return value if isinstance(value, int) else None

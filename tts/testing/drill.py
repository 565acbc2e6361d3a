"""The cap drill: run tasks under a budget cap against a loopback server and compare what the
server says it served with the cap and with what the results report.

Used by the test suite (tests/test_budget.py) and by `benchmarks/caps.py`. Prices are litellm's
list prices for a real model name (gpt-4o-mini by default), so the cost cap is exercised with the
same figures a user would see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from tts._litellm import packaged_price_table, table_cost
from tts.records import Record, RunResult, Task, Usage

CAP_KINDS = ("max_cost", "max_tokens_total", "max_calls")


class DrillOutcome(Record):
    """One drill: the cap, what the server served, and how the results add up."""

    cap_kind: str
    cap: float
    in_flight: int
    tasks: int
    server_calls: int
    server_prompt_tokens: int
    server_completion_tokens: int
    server_cost_usd: float
    results: Usage = Field(default_factory=Usage)
    """The results' `usage`, summed."""
    answered_tasks: int = 0
    """Tasks with at least one answered call."""
    tasks_with_answer: int = 0
    stopped_tasks: int = 0
    """Tasks whose status is budget_exceeded."""

    @property
    def server_spend(self) -> float:
        """What the server served, in the cap's unit."""
        return {"max_cost": self.server_cost_usd, "max_calls": float(self.server_calls),
                "max_tokens_total": float(self.server_prompt_tokens + self.server_completion_tokens)}[self.cap_kind]

    @property
    def overshoot(self) -> float:
        return max(0.0, self.server_spend - self.cap)

    @property
    def adds_up(self) -> bool:
        """The results' tokens and calls are exactly what the server served."""
        r = self.results
        return (r.prompt_tokens, r.completion_tokens, r.calls) == (
            self.server_prompt_tokens, self.server_completion_tokens, self.server_calls)


def list_price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD at litellm's list price (its packaged table); 0 when the model has none."""
    return table_cost(packaged_price_table(), model, prompt_tokens, completion_tokens) or 0.0


def arithmetic_tasks(n: int) -> list[Task]:
    return [Task(id=f"t{i}", prompt=f"What is {i} + {2 * i + 1}?", answer=str(3 * i + 1)) for i in range(n)]


async def cap_drill(cap_kind: str, cap: float, in_flight: int, *, tasks: int = 24, samples: int = 8,
                    model: str = "gpt-4o-mini", max_tokens: int = 16, latency: float = 0.002,
                    strategy: Any = None, server: tuple[str, Callable[[], dict[str, Any]]] | None = None,
                    ) -> tuple[DrillOutcome, list[RunResult]]:
    """Self-consistency@`samples` (or `strategy`) on `tasks` arithmetic tasks, all in flight, through
    `make_backend`'s stack (no cache, no retries) with `concurrency=in_flight` and the one cap.

    The server is a fresh in-process `LoopbackServer` (reply `latency`), or `server=(api_base,
    read_stats)` for one of your own whose stats (`ok`, `prompt_tokens`, `completion_tokens`) count
    from zero, e.g. simserver.py after POST /reset."""
    from tts.testing import LoopbackServer

    if cap_kind not in CAP_KINDS:
        raise ValueError(f"cap_kind must be one of {CAP_KINDS}")
    if server is not None:
        return await _drill(server[0], server[1], cap_kind, cap, in_flight, tasks, samples, model, max_tokens,
                            strategy)
    async with LoopbackServer(latency=latency) as loop:
        return await _drill(loop.url, lambda: dict(loop.stats), cap_kind, cap, in_flight, tasks, samples, model,
                            max_tokens, strategy)


async def _drill(api_base: str, read_stats: Callable[[], dict[str, Any]], cap_kind: str, cap: float, in_flight: int,
                 tasks: int, samples: int, model: str, max_tokens: int, strategy: Any
                 ) -> tuple[DrillOutcome, list[RunResult]]:
    from tts.build import make_backend
    from tts.context import SamplingDefaults
    from tts.run import run_many
    from tts.strategies.self_consistency import SelfConsistency

    caps: dict[str, Any] = {cap_kind: int(cap) if cap_kind != "max_cost" else cap}
    backend = make_backend(model, backend="openai", api_base=api_base, cache_dir=None, retries=0,
                           concurrency=in_flight, **caps)
    try:
        results = await run_many(strategy or SelfConsistency(n=samples), arithmetic_tasks(tasks), backend,
                                 defaults=SamplingDefaults(max_tokens=max_tokens, temperature=0.7))
    finally:
        await backend.aclose()
    stats = read_stats()
    outcome = DrillOutcome(
        cap_kind=cap_kind, cap=cap, in_flight=in_flight, tasks=tasks, server_calls=stats["ok"],
        server_prompt_tokens=stats["prompt_tokens"], server_completion_tokens=stats["completion_tokens"],
        server_cost_usd=list_price(model, stats["prompt_tokens"], stats["completion_tokens"]),
        results=Usage.total(r.usage for r in results),
        answered_tasks=sum(r.usage.calls > 0 for r in results),
        tasks_with_answer=sum(r.usage.calls > 0 and r.answer is not None for r in results),
        stopped_tasks=sum(r.status == "budget_exceeded" for r in results),
    )
    return outcome, results

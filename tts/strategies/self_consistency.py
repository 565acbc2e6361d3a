"""Self-consistency: N samples in parallel, majority (or weighted) vote over normalized answers."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from tts.context import RunContext
from tts.records import RunResult, Task
from tts.selectors.vote import vote, vote_tally
from tts.spec import StrategyField, register
from tts.strategies.base import Strategy
from tts.strategies.single import SingleSample


@register
class SelfConsistency(Strategy):
    name: ClassVar[str] = "self-consistency"
    kind: Literal["self-consistency"] = "self-consistency"
    n: int = Field(8, ge=1)
    """Samples to draw."""
    weighted_by: Literal["none", "score"] = "none"
    """`score`: weight each vote by the candidate's score (set by the generator or a scorer)."""
    generator: StrategyField = Field(default_factory=SingleSample)
    """What produces each candidate; any strategy."""

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        cands = await self.generator.generate(task, ctx, self.n)
        weight = (lambda c: c.score or 0.0) if self.weighted_by == "score" else None
        answer, supporters = vote(cands, ctx.rng("vote"), weight)
        res = self.result(task, ctx, supporters[:1], cands, votes=vote_tally(cands, weight))
        return res.model_copy(update={"answer": answer})

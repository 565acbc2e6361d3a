"""Best-of-N: N candidates in parallel, the best one by a scorer (max score) or a selector."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, RunResult, Task
from tts.selectors.annotate import scored
from tts.selectors.registry import ScorerField, SelectorField
from tts.selectors.vote import top_k_by_score
from tts.spec import StrategyField, register
from tts.strategies.base import Strategy
from tts.strategies.single import SingleSample


@register
class BestOfN(Strategy):
    name: ClassVar[str] = "best-of-n"
    kind: Literal["best-of-n"] = "best-of-n"
    n: int = Field(8, ge=1)
    """Candidates to draw."""
    generator: StrategyField = Field(default_factory=SingleSample)
    """What produces each candidate; any strategy."""
    scorer: ScorerField = None
    """Scores every candidate (a verifier, a pointwise judge, ...); the highest score wins."""
    selector: SelectorField = None
    """Picks the best candidate (a listwise judge, RTV, ...); used when there is no scorer."""

    @model_validator(mode="after")
    def _one_picker(self) -> BestOfN:
        if self.scorer is not None and self.selector is not None:
            raise ConfigError("best-of-n: give either 'scorer' or 'selector', not both")
        return self

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        cands = await self.generator.generate(task, ctx, self.n)
        if not cands:
            return self.result(task, ctx, [], [])
        if self.scorer is not None:
            cands = await scored(self.scorer, task, cands, ctx.child("score"))  # with what the scorer records
            chosen = top_k_by_score(cands, [c.score for c in cands], ctx.rng("ties"), 1)
        elif self.selector is not None:
            chosen = (await self.selector.select(task, cands, ctx.child("select"), 1))[:1]
        else:
            # no picker configured: the generator's own scores (e.g. a nested best-of-n), ties by seed
            chosen = top_k_by_score(cands, [c.score or 0.0 for c in cands], ctx.rng("ties"), 1)
        return self.result(task, ctx, chosen, cands, scores=[c.score for c in cands])

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Stopped before (or while) scoring: the best score so far, ties (and no scores) by seed."""
        return top_k_by_score(candidates, [c.score or 0.0 for c in candidates], ctx.rng("ties"), 1)

"""Self-consistency: N samples in parallel, majority (or weighted) vote over normalized answers.

With `early_stop` the N samples are drawn in waves and the vote ends as soon as more samples
would not change its winner (1.0, lossless) or very probably would not (p < 1); see
`tts.early_stop`. With `confidence_keep` only the most self-certain samples vote (DeepConf-style
filter on the logprobs' self-certainty, `tts.selectors.confidence`); with `consensus`, DeepConf's
online stop (`tts.confidence_gate`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from tts.confidence_gate import DEEPCONF_HIGH, gated_vote
from tts.context import RunContext
from tts.early_stop import check_early_stop, vote_in_waves
from tts.errors import ConfigError
from tts.records import Candidate, RunResult, Task
from tts.selectors.confidence import NO_LOGPROBS, candidate_certainty, certainty_cut
from tts.selectors.vote import vote, vote_tally
from tts.spec import StrategyField, register
from tts.strategies.base import Strategy
from tts.strategies.single import SingleSample


@register
class SelfConsistency(Strategy):
    name: ClassVar[str] = "self-consistency"
    kind: Literal["self-consistency"] = "self-consistency"
    n: int = Field(8, ge=1)
    """Samples to draw (at most, with `early_stop`)."""
    weighted_by: Literal["none", "score"] = "none"
    """`score`: weight each vote by the candidate's score (set by the generator or a scorer)."""
    generator: StrategyField = Field(default_factory=SingleSample)
    """What produces each candidate; any strategy."""
    early_stop: float | None = None
    """None: draw all N. 1.0: stop as soon as the winner is certain (same answer as all N, fewer
    calls). p in (0.5, 1): stop when the leader is the all-N winner with posterior probability >= p."""
    wave: int | None = Field(None, ge=1)
    """Samples per wave with `early_stop` (None: the fewest that could end the vote)."""
    max_weight: float = Field(1.0, gt=0)
    """With `weighted_by="score"`: the most one vote can weigh (scores of verifiers and judges are
    in 0..1). Lossless early stop relies on it; a heavier vote switches it off."""
    confidence_keep: float | None = Field(None, gt=0, le=1)
    """Keep only this fraction of the samples drawn, the most self-certain, for the vote (DeepConf's
    filter: 0.1 "low", 0.9 "high"); needs logprobs. With `early_stop`, samples below the cut of the
    first wave are skipped as they arrive (DeepConf's online threshold)."""

    consensus: float | None = Field(None, gt=0.5, le=1)
    """DeepConf online stop (tts.confidence_gate): draw waves of `wave` (default n/4, at least 2),
    the first setting a self-certainty cut (`confidence_keep`, default 0.9); samples below it do
    not vote; stop once one answer holds this share of the votes (0.95 in DeepConf). Needs logprobs."""

    @field_validator("early_stop")
    @classmethod
    def _valid_early_stop(cls, v: float | None) -> float | None:
        return check_early_stop(v)

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        weight = (lambda c: c.score or 0.0) if self.weighted_by == "score" else None
        meta: dict = {}
        if self.consensus is not None:
            if self.early_stop is not None:
                raise ConfigError("self-consistency: set early_stop or consensus, not both (two stopping rules)")
            cands, voters, gate = await gated_vote(
                lambda start, count: self.generator.generate(task, ctx, count, start=start), self.n,
                wave=self.wave or max(2, self.n // 4), keep=self.confidence_keep or DEEPCONF_HIGH,
                consensus=self.consensus, weight=weight)
            meta["confidence_gate"] = gate.model_dump()
        elif self.early_stop is None:
            cands = await self.generator.generate(task, ctx, self.n)
            voters = self._confident(cands, None)[0]
        else:
            cut: list[float | None] = []

            def ballot(c: Candidate) -> tuple[str | None, float]:
                if self.confidence_keep is not None and not self._keeps(c, cut[0]):
                    return None, 0.0
                return c.answer, 1.0 if weight is None else float(weight(c))

            async def draw(start: int, count: int) -> list[Candidate]:
                got = await self.generator.generate(task, ctx, count, start=start)
                if not cut:  # the first wave sets the confidence cut
                    cut.append(self._confident(got, None)[1])
                return got

            cands, stop = await vote_in_waves(draw, self.n, ballot, early_stop=self.early_stop, wave=self.wave,
                                              max_weight=self.max_weight if weight else 1.0)
            voters = [c for c in cands if self.confidence_keep is None or self._keeps(c, cut[0])]
            meta["early_stop"] = stop.model_dump()
        answer, supporters = vote(voters, ctx.rng("vote"), weight)
        res = self.result(task, ctx, supporters[:1], cands, votes=vote_tally(voters, weight), **meta)
        return res.model_copy(update={"answer": answer})

    def _confident(self, cands: list[Candidate], cut: float | None) -> tuple[list[Candidate], float | None]:
        """The candidates that vote under `confidence_keep`, and the self-certainty cut used."""
        if self.confidence_keep is None or not cands:
            return cands, None
        values = [candidate_certainty(c) for c in cands]
        if any(v is None for v in values):
            raise ConfigError(f"self-consistency confidence_keep: {NO_LOGPROBS}")
        if cut is None:
            cut = certainty_cut([float(v) for v in values], self.confidence_keep)  # type: ignore[arg-type]
        return [c for c in cands if self._keeps(c, cut)], cut

    @staticmethod
    def _keeps(c: Candidate, cut: float | None) -> bool:
        v = candidate_certainty(c)
        return cut is None or (v is not None and v >= cut)

"""Recursive Tournament Voting as a strategy (algorithms.md §1): N candidates from a generator
(any strategy), each summarized (no model call by default), then RTV picks one (or K).

At the defaults N=16, G=2, V=8 one task costs 16 sampling calls and V*(N-1) = 120 judge calls
in ceil(log2 16) = 4 tournament rounds."""

from __future__ import annotations

import asyncio
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from tts.context import RunContext
from tts.early_stop import check_early_stop
from tts.records import Candidate, RunResult, Task
from tts.selectors.judge import ListwiseJudge
from tts.selectors.registry import SummarizerField
from tts.selectors.rtv import RTV
from tts.spec import StrategyField, register
from tts.strategies.base import Strategy
from tts.strategies.single import SingleSample
from tts.summarizers.short import ShortSummarizer


@register
class TournamentVoting(Strategy):
    name: ClassVar[str] = "rtv"
    kind: Literal["rtv"] = "rtv"
    n: int = Field(16, ge=1)
    """Candidates N."""
    group_size: int = Field(2, ge=2)
    """G: candidates per judge call."""
    votes: int = Field(8, ge=1)
    """V: judge calls per group, in parallel."""
    tie_break: Literal["rng", "extra-vote"] = "rng"
    """`rng`: a seeded draw (exactly V judge calls per match); `extra-vote`: one more judge call on a tie."""
    early_stop: float | None = None
    """Stop each contest's votes early (see `RTV.early_stop`): 1.0 lossless, p < 1 posterior."""
    wave: int | None = Field(None, ge=1)
    """Votes per wave with `early_stop` (None: the fewest that could decide)."""
    select_k: int = Field(1, ge=1)
    """Survivors to return (`chosen`, best first); the answer is the first one's."""
    generator: StrategyField = Field(default_factory=SingleSample)
    """What produces each candidate; any strategy (e.g. a PDR run)."""
    summarizer: SummarizerField = Field(default_factory=ShortSummarizer)
    """What the judge sees of each candidate (default: no-model summary of a short answer)."""
    judge: ListwiseJudge = Field(default_factory=ListwiseJudge)
    """The listwise judge (its backend `use`, temperature, what it sees). Prompt overrides given to
    this strategy (`prompts`) apply to it too."""

    @field_validator("early_stop")
    @classmethod
    def _valid_early_stop(cls, v: float | None) -> float | None:
        return check_early_stop(v)

    def selector(self) -> RTV:
        judge = self.judge
        if self.prompts:
            judge = judge.model_copy(update={"prompts": {**self.prompts, **judge.prompts}})
        return RTV(group_size=self.group_size, votes=self.votes, judge=judge, summarizer=self.summarizer,
                   tie_break=self.tie_break, early_stop=self.early_stop, wave=self.wave)

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        cands = await self.generator.generate(task, ctx, self.n)
        sctx = ctx.child("summarize")
        cands = list(await asyncio.gather(*(self._summarized(task, c, sctx) for c in cands)))
        ctx.keep("candidates", cands)
        tournament = await self.selector().tournament(task, cands, ctx, self.select_k)
        return self.result(task, ctx, tournament.winners, cands, tournament=tournament.summary())

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Stopped mid-tournament: among the survivors of the last finished round (all candidates
        before the first), the best-supported answer."""
        where = ctx if ctx.path.rsplit("/", 1)[-1] == "rtv" else ctx.child("rtv")  # as RTV.tournament
        survivors = where.kept("survivors") or candidates
        return super().pick_partial(list(survivors), ctx)

    async def _summarized(self, task: Task, cand: Candidate, ctx: RunContext) -> Candidate:
        if cand.summary is not None:
            return cand
        return cand.model_copy(update={"summary": await self.summarizer.summarize(task, cand, ctx)})

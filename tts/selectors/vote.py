"""Majority and weighted vote over normalized answers (self-consistency), and top-k by score."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Task
from tts.registry import Component, ScorerField, register
from tts.selectors.certainty import confident, keeps
from tts.selectors.confidence_gate import DEEPCONF_HIGH, gated_vote
from tts.selectors.early_stop import check_early_stop, vote_in_waves
from tts.selectors.selection import Draw, Selection


def vote_tally(candidates: Sequence[Candidate], weight: Callable[[Candidate], float] | None = None) -> dict[str, float]:
    """Sum of weights per answer (1 per candidate when `weight` is None); no-answer candidates skipped."""
    tally: dict[str, float] = {}
    for c in candidates:
        if c.answer is None:
            continue
        tally[c.answer] = tally.get(c.answer, 0.0) + (1.0 if weight is None else float(weight(c)))
    return tally


def vote(candidates: Sequence[Candidate], rng: random.Random,
         weight: Callable[[Candidate], float] | None = None) -> tuple[str | None, list[Candidate]]:
    """The winning answer (ties broken by `rng`) and the candidates that gave it."""
    tally = vote_tally(candidates, weight)
    if not tally:
        return None, []
    top = max(tally.values())
    leaders = sorted(a for a, w in tally.items() if w == top)
    winner = leaders[0] if len(leaders) == 1 else rng.choice(leaders)
    return winner, [c for c in candidates if c.answer == winner]


def rank_answers(candidates: Sequence[Candidate], rng: random.Random,
                 weight: Callable[[Candidate], float] | None = None) -> list[str]:
    """Answers from most to least support; each tie broken by `rng`. The first is `vote`'s winner
    (same draws from the same stream)."""
    tally = vote_tally(candidates, weight)
    order: list[str] = []
    while tally:
        top = max(tally.values())
        leaders = sorted(a for a, w in tally.items() if w == top)
        pick = leaders[0] if len(leaders) == 1 else rng.choice(leaders)
        order.append(pick)
        del tally[pick]
    return order


def rank_by_answer(candidates: Sequence[Candidate], rng: random.Random,
                   weight: Callable[[Candidate], float] | None = None) -> list[Candidate]:
    """Candidates best first: one per answer in vote order, then the other supporters, then the
    candidates with no answer."""
    groups = [[c for c in candidates if c.answer == a] for a in rank_answers(candidates, rng, weight)]
    return [g[0] for g in groups] + [c for g in groups for c in g[1:]] + [c for c in candidates if c.answer is None]


def top_k_by_score(candidates: Sequence[Candidate], scores: Sequence[float], rng: random.Random,
                   k: int = 1) -> list[Candidate]:
    """The `k` best-scored candidates, best first, each with its score set; ties broken by `rng`."""
    keys = [rng.random() for _ in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], keys[i]))
    return [candidates[i].model_copy(update={"score": float(scores[i])}) for i in order[:k]]


class ScoreSelect:
    """Mixin: a Scorer is also a Selector (top-k by score, ties by the seeded RNG)."""

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        if not candidates:
            return []
        scores = await self.score(task, candidates, ctx)  # type: ignore[attr-defined]
        return top_k_by_score(candidates, scores, ctx.rng(f"{self.kind}/ties"), k)  # type: ignore[attr-defined]


class _Vote(Component):
    """A vote over normalized answers that can stop early (`tts.selectors.early_stop`) and can let only
    the most self-certain candidates vote (DeepConf's filter, `tts.selectors.confidence`)."""

    early_stop: float | None = None
    """None: every candidate votes. 1.0: when drawing, stop as soon as the winner is certain (the
    same answer as all N, fewer calls). p in (0.5, 1): stop when the leader is the all-N winner
    with posterior probability >= p."""
    wave: int | None = Field(None, ge=1)
    """Candidates per wave with `early_stop` (None: the fewest that could end the vote)."""
    confidence_keep: float | None = Field(None, gt=0, le=1)
    """Keep only this fraction of the candidates, the most self-certain, for the vote (DeepConf's
    filter: 0.1 "low", 0.9 "high"); needs logprobs. When drawing with `early_stop`, candidates
    below the cut of the first wave are skipped as they arrive (DeepConf's online threshold)."""
    consensus: float | None = Field(None, gt=0.5, le=1)
    """DeepConf online stop (tts.selectors.confidence_gate): draw waves of `wave` (default n/4, at least 2),
    the first setting a self-certainty cut (`confidence_keep`, default 0.9); candidates below it do
    not vote; stop once one answer holds this share of the votes (0.95 in DeepConf). Needs logprobs."""
    names_its_context: ClassVar[bool] = True  # a vote makes no calls: it needs no context of its own

    def needs(self) -> frozenset[str]:
        # DeepConf's filter and its online stop read the candidates' self-certainty
        gated = self.confidence_keep is not None or self.consensus is not None
        return frozenset({"logprobs"}) if gated else frozenset()

    @field_validator("early_stop")
    @classmethod
    def _valid_early_stop(cls, v: float | None) -> float | None:
        return check_early_stop(v)

    @model_validator(mode="after")
    def _one_stopping_rule(self) -> _Vote:
        if self.consensus is not None and self.early_stop is not None:
            raise ConfigError(f"{self.kind}: set early_stop or consensus, not both (two stopping rules)")  # type: ignore[attr-defined]
        return self

    def weight(self, c: Candidate) -> float:
        return 1.0

    @property
    def weighed(self) -> Callable[[Candidate], float] | None:
        return None

    @property
    def bound(self) -> float:
        """The most one vote can weigh (the lossless rule relies on it)."""
        return 1.0

    async def weighted(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        return candidates

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        return (await self.decide(task, candidates, ctx, k)).chosen

    async def decide(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> Selection:
        candidates = await self.weighted(task, candidates, ctx)
        voters, _ = confident(candidates, self.confidence_keep, None)
        return self._tally(voters, candidates, ctx, k)

    async def decide_drawing(self, task: Task, draw: Draw, n: int, ctx: RunContext, k: int = 1) -> Selection:
        if self.consensus is not None:
            return await self._gated(task, draw, n, ctx, k)
        if self.early_stop is None:
            return await self.decide(task, await draw(0, n), ctx, k)
        cut: list[float | None] = []

        def ballot(c: Candidate) -> tuple[str | None, float]:
            if not keeps(c, cut[0]):
                return None, 0.0
            return c.answer, self.weight(c)

        async def wave(start: int, count: int) -> list[Candidate]:
            got = await self.weighted(task, await draw(start, count), ctx)
            if not cut:  # the first wave sets the confidence cut
                cut.append(confident(got, self.confidence_keep, None)[1])
            return got

        cands, stop = await vote_in_waves(wave, n, ballot, early_stop=self.early_stop, wave=self.wave,
                                          max_weight=self.bound)
        voters = [c for c in cands if keeps(c, cut[0] if cut else None)]
        res = self._tally(voters, cands, ctx, k)
        return res.model_copy(update={"metadata": {**res.metadata, "early_stop": stop.model_dump()}})

    async def _gated(self, task: Task, draw: Draw, n: int, ctx: RunContext, k: int) -> Selection:
        """DeepConf's online algorithm (`tts.selectors.confidence_gate`)."""

        async def wave(start: int, count: int) -> list[Candidate]:
            return await self.weighted(task, await draw(start, count), ctx)

        cands, voters, gate = await gated_vote(wave, n, wave=self.wave or max(2, n // 4),
                                               keep=self.confidence_keep or DEEPCONF_HIGH,
                                               consensus=self.consensus or 0.95, weight=self.weighed)
        res = self._tally(voters, cands, ctx, k)
        return res.model_copy(update={"metadata": {**res.metadata, "confidence_gate": gate.model_dump()}})

    def _tally(self, voters: list[Candidate], candidates: list[Candidate], ctx: RunContext, k: int) -> Selection:
        rng = ctx.rng("vote")
        chosen = rank_by_answer(voters, rng, self.weighed)[:k]
        answer = chosen[0].answer if chosen else None
        return Selection(chosen=chosen, candidates=candidates, answer=answer,
                         metadata={"votes": vote_tally(voters, self.weighed)})


@register
class MajorityVote(_Vote):
    """Group candidates by normalized answer; the most common answer wins; ties by the seeded RNG."""

    kind: Literal["majority"] = "majority"


@register
class WeightedVote(_Vote):
    """Sum a per-candidate weight per answer; the heaviest answer wins; ties by the seeded RNG.

    The weight is the score from `scorer` when one is given (a verifier, a pointwise judge,
    self-certainty), else the candidate's own `score`, else `metadata[weight_key]`."""

    kind: Literal["weighted-vote"] = "weighted-vote"
    scorer: ScorerField = None
    """Scores candidates first; its scores are the weights."""
    weight_key: str | None = None
    """Read the weight from `candidate.metadata[weight_key]` instead of `candidate.score`."""
    max_weight: float = Field(1.0, gt=0)
    """The most one vote can weigh (scores of verifiers and judges are in 0..1). Lossless early
    stop relies on it; a heavier vote switches it off."""

    async def weighted(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        if self.scorer is None or not candidates:
            return candidates
        scores = await self.scorer.score(task, candidates, ctx.child("weights"))
        return [c.model_copy(update={"score": float(s)}) for c, s in zip(candidates, scores, strict=True)]

    @property
    def weighed(self) -> Callable[[Candidate], float] | None:
        return self.weight

    @property
    def bound(self) -> float:
        return self.max_weight

    def weight(self, c: Candidate) -> float:
        if self.weight_key is not None:
            return float(c.metadata.get(self.weight_key) or 0.0)
        return float(c.score or 0.0)

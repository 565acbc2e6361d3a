"""Majority and weighted vote over normalized answers (self-consistency), and top-k by score."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Literal

from tts.context import RunContext
from tts.records import Candidate, Task
from tts.selectors.registry import Component, ScorerField, register_component


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


def majority(candidates: Sequence[Candidate], rng: random.Random) -> tuple[str | None, list[Candidate]]:
    return vote(candidates, rng)


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


@register_component
class MajorityVote(Component):
    """Group candidates by normalized answer; the most common answer wins; ties by the seeded RNG."""

    kind: Literal["majority"] = "majority"

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        return rank_by_answer(candidates, ctx.rng("vote"))[:k]


@register_component
class WeightedVote(Component):
    """Sum a per-candidate weight per answer; the heaviest answer wins; ties by the seeded RNG.

    The weight is the score from `scorer` when one is given (a verifier, a pointwise judge,
    self-certainty), else the candidate's own `score`, else `metadata[weight_key]`."""

    kind: Literal["weighted-vote"] = "weighted-vote"
    scorer: ScorerField = None
    """Scores candidates first; its scores are the weights."""
    weight_key: str | None = None
    """Read the weight from `candidate.metadata[weight_key]` instead of `candidate.score`."""

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        if self.scorer is not None and candidates:
            scores = await self.scorer.score(task, candidates, ctx.child("weights"))
            candidates = [c.model_copy(update={"score": float(s)}) for c, s in zip(candidates, scores, strict=True)]
        return rank_by_answer(candidates, ctx.rng("vote"), self.weight)[:k]

    def weight(self, c: Candidate) -> float:
        if self.weight_key is not None:
            return float(c.metadata.get(self.weight_key) or 0.0)
        return float(c.score or 0.0)

"""Scorers that also record why: `annotate` returns the candidates with `score` and metadata set
(the tests each one passed, how P(True) was measured), so the record reaches the run's result."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from tts.context import RunContext
from tts.records import Candidate, Task
from tts.registry import Component, ScorerField, register
from tts.selectors.selection import Selection
from tts.selectors.vote import top_k_by_score


class Annotates:
    """Mixin: `score` and `select` (top-k by score, ties by the seeded RNG) from `annotate`."""

    async def annotate(self, task: Task, candidates: list[Candidate], ctx: RunContext | None) -> list[Candidate]:
        raise NotImplementedError

    async def score(self, task: Task, candidates: list[Candidate], ctx: RunContext | None = None) -> list[float]:
        return [float(c.score or 0.0) for c in await self.annotate(task, candidates, ctx)]

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        if not candidates:
            return []
        annotated = await self.annotate(task, candidates, ctx)
        return top_k_by_score(annotated, [float(c.score or 0.0) for c in annotated],
                              ctx.rng(f"{self.kind}/ties"), k)  # type: ignore[attr-defined]


async def scored(scorer: Any, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
    """`candidates` with `score` set by `scorer` (and its metadata, when it annotates)."""
    annotate = getattr(scorer, "annotate", None)
    if annotate is not None:
        return list(await annotate(task, candidates, ctx))
    scores = await scorer.score(task, candidates, ctx)
    return [c.model_copy(update={"score": float(s)}) for c, s in zip(candidates, scores, strict=True)]


def with_meta(candidate: Candidate, score: float | None = None, **meta: Any) -> Candidate:
    update: dict[str, Any] = {"metadata": {**candidate.metadata, **meta}}
    if score is not None:
        update["score"] = float(score)
    return candidate.model_copy(update=update)


@register
class TopScore(Component):
    """The best-scored candidates: scored by `scorer` (a verifier, a pointwise judge, P(True)...),
    or by the scores they arrive with (None: e.g. a nested best-of-n's); ties by the seeded RNG.
    Any scorer placed where a selector is asked for becomes this."""

    kind: Literal["top-score"] = "top-score"
    scorer: ScorerField = None
    """Scores every candidate; the highest score wins. None: the candidates' own scores."""
    names_its_context: ClassVar[bool] = True  # the scorer's calls go under `<strategy>/score`

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        return (await self.decide(task, candidates, ctx, k)).chosen

    async def decide(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> Selection:
        if self.scorer is not None and candidates:
            candidates = await scored(self.scorer, task, candidates, ctx.child("score"))  # with what it records
        return Selection(chosen=self.pick_partial(candidates, ctx, k), candidates=candidates)

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        """The best score so far, ties (and no scores) by seed."""
        return top_k_by_score(candidates, [c.score or 0.0 for c in candidates], ctx.rng("ties"), k)

"""Logprob-based confidence: self-certainty (2025; docs/algorithms.md) and a Borda-weighted vote.

Self-certainty of a response is the per-token KL divergence of the model's next-token
distribution from uniform, averaged over the response. Providers return only the top-k
logprobs per token, so we take the KL over those k entries as they are (not renormalized):
    SC_token = -log k - mean_j log p_j
which is larger when the mass sits on few tokens.

Where it comes from: a candidate carries `metadata["self_certainty"]` (a float) or
`metadata["logprobs"]` (the completion's per-token logprobs, with top_logprobs); see
`Strategy.candidate`. The generator must ask for logprobs (`logprobs=True, top_logprobs=5`).

When there are none (the backend returned no logprobs) this is a clear skip: `SelfCertainty`
raises ConfigError saying so; `ConfidenceVote` does the same unless `fallback="majority"`, in
which case it votes unweighted and notes it in the chosen candidate's `metadata["selector_note"]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Task
from tts.registry import Component, register
from tts.selectors.certainty import NO_LOGPROBS, candidate_certainty, certainty_cut, self_certainty
from tts.selectors.vote import ScoreSelect, rank_by_answer


def borda_weights(values: Sequence[float], p: float = 0.5) -> list[float]:
    """Rank r (1 = highest value; equal values keep input order) gets (N - r + 1)^p; in input order."""
    n = len(values)
    order = sorted(range(n), key=lambda i: -values[i])
    out = [0.0] * n
    for r, i in enumerate(order, start=1):
        out[i] = float(n - r + 1) ** p
    return out


@register
class SelfCertainty(ScoreSelect, Component):
    """Scorer (and top-k selector): each candidate's self-certainty. ConfigError without logprobs."""

    kind: Literal["self-certainty"] = "self-certainty"

    def needs(self) -> frozenset[str]:
        return frozenset({"logprobs"})  # reads the candidates' token logprobs

    async def score(self, task: Task, candidates: list[Candidate], ctx: RunContext | None = None) -> list[float]:
        values = [candidate_certainty(c) for c in candidates]
        if any(v is None for v in values):
            raise ConfigError(NO_LOGPROBS)
        return [float(v) for v in values]  # type: ignore[arg-type]


@register
class ConfidenceVote(Component):
    """Weighted vote where each candidate weighs its Borda weight by self-certainty rank."""

    kind: Literal["confidence-vote"] = "confidence-vote"
    power: float = Field(0.5, ge=0.0)
    """p in (N - r + 1)^p."""
    fallback: Literal["error", "majority"] = "error"
    """Without logprobs: raise ConfigError, or vote unweighted and note it on the chosen candidate."""

    def needs(self) -> frozenset[str]:
        return frozenset({"logprobs"})  # reads the candidates' token logprobs

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        values = [candidate_certainty(c) for c in candidates]
        if any(v is None for v in values):
            if self.fallback == "error":
                raise ConfigError(NO_LOGPROBS)
            ranked = rank_by_answer(candidates, ctx.rng("vote"))[:k]
            note = "no logprobs from the backend: unweighted majority vote"
            return [c.model_copy(update={"metadata": {**c.metadata, "selector_note": note}}) for c in ranked]
        weights = borda_weights([float(v) for v in values], self.power)  # type: ignore[arg-type]
        weighted = [c.model_copy(update={"score": w}) for c, w in zip(candidates, weights, strict=True)]
        return rank_by_answer(weighted, ctx.rng("vote"), lambda c: c.score or 0.0)[:k]


# the self-certainty functions live in tts.selectors.certainty; these names stay importable from here
__all__ = ["NO_LOGPROBS", "ConfidenceVote", "SelfCertainty", "borda_weights", "candidate_certainty", "certainty_cut",
           "self_certainty"]

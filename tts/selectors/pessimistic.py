"""Pessimistic verification (Heimdall, 2025; docs/algorithms.md#pessimistic-verification-heimdall).

N solutions, M pointwise judge verdicts each; group by answer a and pick
    argmax_a  mean_score(a) - alpha * sqrt( ln(N*M) / (n_a*M + 1) )
where n_a is the number of solutions giving a. alpha -> 0 is the mean score; a large alpha
favours the most common answer (majority). Ties are broken by the seeded RNG.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.records import Candidate, Task
from tts.registry import Component, register
from tts.selectors.judge import PointwiseJudge


def pessimistic_scores(verdicts: dict[str, list[list[float | None]]], n: int, m: int,
                       alpha: float) -> dict[str, float]:
    """Per answer: its members' verdicts (one list of M grades per solution, None = unparseable)
    -> mean valid grade minus the uncertainty term. A group with no valid grade has mean 0."""
    log_nm = math.log(n * m) if n * m > 1 else 0.0
    out = {}
    for answer, members in verdicts.items():
        valid = [g for grades in members for g in grades if g is not None]
        mean = sum(valid) / len(valid) if valid else 0.0
        out[answer] = mean - alpha * math.sqrt(log_nm / (len(members) * m + 1))
    return out


@register
class PessimisticVerification(Component):
    """Grade every candidate M times with a pointwise judge; pick the answer with the best
    pessimistic score. The returned candidates carry that score; the representative of an
    answer is its best-graded member. Candidates without an answer are left out unless no
    candidate has one."""

    kind: Literal["pessimistic"] = "pessimistic"
    judge: PointwiseJudge = Field(default_factory=lambda: PointwiseJudge(samples=4))
    """Its `samples` is M."""
    alpha: float = Field(1.0, ge=0.0)
    """Weight of the uncertainty penalty (ours: 1.0)."""

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        if not candidates:
            return []
        verdicts = await self.judge.verdicts(task, candidates, ctx.child("pessimistic"))
        keyed = [(c.answer if c.answer is not None else f"\0{i}", c, v)
                 for i, (c, v) in enumerate(zip(candidates, verdicts, strict=True))]
        if any(c.answer is not None for c in candidates):
            keyed = [t for t in keyed if t[1].answer is not None]
        groups: dict[str, list[tuple[Candidate, list[float | None]]]] = {}
        for key, c, v in keyed:
            groups.setdefault(key, []).append((c, v))
        values = pessimistic_scores({a: [v for _, v in g] for a, g in groups.items()},
                                    len(candidates), self.judge.samples, self.alpha)
        rng = ctx.rng("pessimistic/ties")
        tiebreak = {a: rng.random() for a in sorted(values)}
        ranked = sorted(values, key=lambda a: (-values[a], tiebreak[a]))

        def own(item: tuple[Candidate, list[float | None]]) -> float:
            valid = [g for g in item[1] if g is not None]
            return sum(valid) / len(valid) if valid else 0.0

        out = []
        for a in ranked[:k]:
            best = max(groups[a], key=own)[0]  # max keeps the first of equals
            out.append(best.model_copy(update={"score": values[a]}))
        return out

"""Majority and weighted vote over normalized answers (self-consistency)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from tts.records import Candidate


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

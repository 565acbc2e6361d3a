"""Early stopping for votes: draw votes in waves, stop when more votes would not change the winner.

One mechanism for every vote in the library: self-consistency (plain or weighted), and the V judge
votes of every RTV contest (so also PDR's RTV top-k and best-of-n with an RTV selector).

`early_stop` picks the rule checked after each wave:

- `1.0`, lossless: stop only when the leader cannot be overtaken or tied even if every remaining
  vote went to the runner-up (lead > remaining x max weight). The winner is then exactly the one
  the full budget gives (same seed: the votes drawn are the full run's first votes).
- `p` in (0.5, 1), posterior: stop when the posterior probability that the current leader is also
  the full-budget winner is at least `p`. The answer distribution is modelled as
  theta ~ Dirichlet(counts + 1) over the answers seen plus one bucket for answers not seen yet
  (the Dirichlet model over answer counts of Adaptive-Consistency, Aggarwal et al. 2023, "Let's
  Sample Step by Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs",
  arXiv:2305.11860; with two answers it is their Beta rule). Where Adaptive-Consistency asks
  P(theta_leader is the largest), we ask the budget-aware question: how likely is the leader to
  still win once the remaining votes are drawn from the posterior predictive (Dirichlet-
  multinomial)? We use a lower bound on it, exact and deterministic: one minus, summed over the
  rivals, the chance that the rival ends ahead (half the chance of a tie), each computed exactly
  with the other answers pooled. With few votes left it goes to 1, and it is 1 whenever the
  lossless rule holds, so `p` never stops later than 1.0 does.
- `None`: no early stop, one wave of the whole budget (the default).

Waves: `wave=None` (default) sizes each wave as the fewest further votes that could end the vote
(all of them for the current leader), so no vote is sent that could not matter, and the number
of stages stays small (the first wave of a lossless V=8 contest is 5). A fixed `wave=w` sends w
at a time. Every vote of a wave is awaited and counted (it is paid for); after the decision no
vote is sent.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from pydantic import Field

from tts.records import Record

T = TypeVar("T")
Ballot = tuple[Hashable | None, float]
"""What a drawn item votes for (None: no valid vote) and with which weight."""

PRIOR = 1.0
"""Dirichlet pseudo-count per answer (seen, and the unseen bucket): uniform, as Adaptive-Consistency."""

class StopRecord(Record):
    """How a vote went: what was drawn in which waves and why it stopped."""

    budget: int
    drawn: int = 0
    waves: list[int] = Field(default_factory=list)
    early_stop: float | None = None
    stopped_early: bool = False
    confidence: float | None = None
    """At the decision: the posterior probability that the leader is the full-budget winner (1.0
    when it cannot lose)."""


def check_early_stop(value: float | None) -> float | None:
    """Validate an `early_stop` setting (for config fields and the CLI)."""
    if value is not None and not 0.5 < value <= 1.0:
        raise ValueError(f"early_stop must be in (0.5, 1.0] (1.0 = lossless), got {value}")
    return value


def tallies(ballots: Sequence[Ballot]) -> tuple[dict[Hashable, float], dict[Hashable, int]]:
    """Total weight and number of votes per answer (invalid votes skipped)."""
    weight: dict[Hashable, float] = {}
    count: dict[Hashable, int] = {}
    for key, w in ballots:
        if key is None:
            continue
        weight[key] = weight.get(key, 0.0) + w
        count[key] = count.get(key, 0) + 1
    return weight, count


def _leader(weight: dict[Hashable, float]) -> tuple[Hashable | None, float, float]:
    """(unique leader or None on a tie, its weight, the runner-up's weight)."""
    if not weight:
        return None, 0.0, 0.0
    ordered = sorted(weight.items(), key=lambda kv: -kv[1])
    top = ordered[0][1]
    second = ordered[1][1] if len(ordered) > 1 else 0.0
    return (ordered[0][0] if top > second else None), top, second


def cannot_lose(weight: dict[Hashable, float], remaining: int, max_weight: float = 1.0) -> bool:
    """True when the leader stays strictly ahead whatever the `remaining` votes are."""
    leader, top, second = _leader(weight)
    return leader is not None and top - second > remaining * max_weight


def win_probability(weight: dict[Hashable, float], count: dict[Hashable, int], remaining: int) -> float:
    """A lower bound on the posterior-predictive probability that the current leader still wins
    after `remaining` more votes: 1 - sum over rivals of P(the rival ends ahead) + P(tie)/2 (the
    union bound; a seeded tie-break wins half of two-way ties). Each pair (leader, rival) is exact
    under the Dirichlet-multinomial with the other answers pooled, so there is no sampling noise.
    Future votes weigh their answer's mean weight so far; the unseen bucket, the overall mean."""
    leader, _, _ = _leader(weight)
    if leader is None:
        return 0.0
    if remaining <= 0:
        return 1.0
    overall = sum(weight.values()) / max(1, sum(count.values()))
    rivals = [(weight[k], weight[k] / count[k], count[k] + PRIOR) for k in weight if k != leader]
    rivals.append((0.0, overall, PRIOR))  # every unseen answer pooled into one rival: conservative
    w_l, m_l, a_l = weight[leader], weight[leader] / count[leader], count[leader] + PRIOR
    total_alpha = a_l + sum(a for _, _, a in rivals)
    r = remaining
    head = math.lgamma(r + 1) + math.lgamma(total_alpha) - math.lgamma(total_alpha + r)
    lose = 0.0
    for w_j, m_j, a_j in rivals:
        a_rest = total_alpha - a_l - a_j
        for x in range(r + 1):
            base_x = head - math.lgamma(x + 1) + math.lgamma(a_l + x) - math.lgamma(a_l)
            for y in range(r - x + 1):
                diff = (w_j + y * m_j) - (w_l + x * m_l)
                if diff < -1e-9:
                    continue
                z = r - x - y
                if a_rest <= 0 and z:
                    continue  # no other answer to draw
                rest = math.lgamma(a_rest + z) - math.lgamma(a_rest) if a_rest > 0 else 0.0
                logp = (base_x - math.lgamma(y + 1) - math.lgamma(z + 1) + math.lgamma(a_j + y) - math.lgamma(a_j)
                        + rest)
                lose += math.exp(logp) * (0.5 if diff <= 1e-9 else 1.0)
    return max(0.0, 1.0 - lose)


def decide(ballots: Sequence[Ballot], remaining: int, early_stop: float,
           max_weight: float = 1.0) -> tuple[bool, float | None]:
    """(stop now?, the leader's win probability when known)."""
    weight, count = tallies(ballots)
    if remaining <= 0:
        return True, 1.0
    # A weight above the bound voids the lossless argument: then only the posterior may stop.
    bounded = all(w <= max_weight for k, w in ballots if k is not None)
    if bounded and cannot_lose(weight, remaining, max_weight):
        return True, 1.0
    if early_stop >= 1.0:
        return False, None
    p = win_probability(weight, count, remaining)
    return p >= early_stop, p


def _next_wave(ballots: list[Ballot], remaining: int, early_stop: float, max_weight: float) -> int:
    """The fewest further votes that could end the vote: all of them for the current leader
    (binary search; the chance to stop only grows with more votes for the leader)."""
    weight, _ = tallies(ballots)
    leader, _, _ = _leader(weight)
    key: Hashable = leader if leader is not None else max(weight, key=lambda k: weight[k], default=object())
    vote_weight = max_weight if early_stop >= 1.0 else (weight[key] / sum(1 for k, _ in ballots if k == key)
                                                        if key in weight else 1.0)

    def enough(x: int) -> bool:
        return decide([*ballots, *[(key, vote_weight)] * x], remaining - x, early_stop, max_weight)[0]

    lo, hi = 1, remaining
    while lo < hi:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


async def vote_in_waves(
    draw: Callable[[int, int], Awaitable[Sequence[T]]],
    budget: int,
    ballot: Callable[[T], Ballot],
    *,
    early_stop: float | None,
    wave: int | None = None,
    max_weight: float = 1.0,
) -> tuple[list[T], StopRecord]:
    """Draw up to `budget` items, `draw(start, count)` at a time, until the rule decides.

    `draw` must return the items of indices start..start+count-1 (it may return fewer, e.g. a
    candidate without an answer dropped: they still count against the budget). `ballot(item)`
    says what the item votes for. `max_weight` bounds one vote's weight (1 for plain votes);
    the lossless rule relies on it and is skipped when a vote weighs more."""
    check_early_stop(early_stop)
    record = StopRecord(budget=budget, early_stop=early_stop)
    items: list[T] = []
    ballots: list[Ballot] = []
    drawn = 0
    while drawn < budget:
        remaining = budget - drawn
        if early_stop is None:
            size = remaining
        else:
            if drawn:
                stop, p = decide(ballots, remaining, early_stop, max_weight)
                record.confidence = p
                if stop:
                    record.stopped_early = True
                    break
            size = min(wave, remaining) if wave else _next_wave(ballots, remaining, early_stop, max_weight)
        got = list(await draw(drawn, size))
        drawn += size
        record.waves.append(size)
        items.extend(got)
        ballots.extend(ballot(x) for x in got)
    record.drawn = drawn
    if early_stop is not None and not record.stopped_early:
        record.confidence = 1.0
    return items, record

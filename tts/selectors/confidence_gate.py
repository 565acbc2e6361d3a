"""Confidence-gated sampling online: DeepConf's online algorithm on self-certainty.

DeepConf (Fu et al. 2025, "Deep Think with Confidence", arXiv:2508.15260, Algorithm 2), with the
self-certainty of `tts.selectors.certainty` as the confidence of a sample:

1. Warm-up: draw one wave; the cut is the self-certainty above which its `keep` most self-certain
   fraction lies (DeepConf-low keeps 0.1, DeepConf-high 0.9).
2. Draw further waves; a sample below the cut is dropped from the vote. (DeepConf ends such a
   trace while it is being generated; a chat API returns whole replies, so here it is paid,
   counted, and kept out of the vote.) The same cut applies to the warm-up's own samples.
3. After every wave, stop once the leading answer holds at least `consensus` of the kept votes'
   weight (the paper's tau, 0.95), or the budget is spent. No sample is sent after the decision;
   every sample of a wave sent is awaited and counted.

The offline filter (keep the most self-certain fraction of all N, then vote) is
`SelfConsistency(confidence_keep=...)`; this module is its online form
(`SelfConsistency(consensus=...)`, i.e. the vote selector's `consensus`, `tts.selectors.vote`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from pydantic import Field

from tts.errors import ConfigError
from tts.records import Candidate, Record
from tts.selectors.certainty import NO_LOGPROBS, candidate_certainty, certainty_cut
from tts.selectors.early_stop import tallies

DEEPCONF_HIGH = 0.9
"""Default `keep`: DeepConf-high, the variant that drops only the least certain tenth."""


class GateRecord(Record):
    """How an online confidence-gated vote went."""

    budget: int
    keep: float
    consensus: float
    cut: float | None = None
    """The warm-up's self-certainty cut."""
    waves: list[int] = Field(default_factory=list)
    drawn: int = 0
    dropped: int = 0
    """Samples below the cut (drawn and paid, not voting)."""
    share: float = 0.0
    """The leading answer's share of the kept votes' weight at the decision."""
    stopped_early: bool = False


def certainty(c: Candidate) -> float:
    """A candidate's self-certainty; ConfigError when the backend returned no logprobs."""
    value = candidate_certainty(c)
    if value is None:
        raise ConfigError(f"confidence-gated sampling: {NO_LOGPROBS}")
    return value


def leader_share(voters: Sequence[Candidate], weight: Callable[[Candidate], float] | None = None) -> float:
    """The largest answer's share of the total vote weight (0 with no valid vote)."""
    totals, _ = tallies([(c.answer, 1.0 if weight is None else float(weight(c))) for c in voters])
    whole = sum(totals.values())
    return max(totals.values()) / whole if whole > 0 else 0.0


async def gated_vote(
    draw: Callable[[int, int], Awaitable[Sequence[Candidate]]],
    budget: int,
    *,
    wave: int,
    keep: float = DEEPCONF_HIGH,
    consensus: float = 0.95,
    weight: Callable[[Candidate], float] | None = None,
) -> tuple[list[Candidate], list[Candidate], GateRecord]:
    """Draw up to `budget` candidates, `draw(start, count)` a wave of `wave` at a time (the first is
    the warm-up), and return (every candidate drawn, the ones that vote, the record)."""
    if wave < 1:
        raise ConfigError(f"confidence-gated sampling: wave must be at least 1, got {wave}")
    record = GateRecord(budget=budget, keep=keep, consensus=consensus)
    drawn: list[Candidate] = []
    voters: list[Candidate] = []
    while record.drawn < budget:
        size = min(wave, budget - record.drawn)
        got = list(await draw(record.drawn, size))
        record.drawn += size
        record.waves.append(size)
        drawn.extend(got)
        if record.cut is None:
            record.cut = certainty_cut([certainty(c) for c in got], keep) if got else None
        kept = [c for c in got if record.cut is None or certainty(c) >= record.cut]
        record.dropped += len(got) - len(kept)
        voters.extend(kept)
        record.share = leader_share(voters, weight)
        if record.share >= consensus and record.drawn < budget:
            record.stopped_early = True
            break
    return drawn, voters, record

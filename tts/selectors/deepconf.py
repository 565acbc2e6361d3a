"""DeepConf's confidence measures (Fu et al. 2025, "Deep Think with Confidence", arXiv:2508.15260),
as pure functions; the online algorithm that uses them is `tts.strategies.deepconf_online`.

- Token confidence: C_i = -(1/k) sum_j log P_i(j) over the top-k logprobs of token i (high when
  the model's mass sits on few tokens).
- Group confidence: the mean token confidence over a sliding window of the last `window` tokens.
- A trace's lowest group confidence: the minimum over its windows (a trace shorter than the window
  has one group, all of it).
- The threshold: the warm-up traces' lowest group confidences at the percentile that keeps the
  top 10% (DeepConf-low: the 90th percentile) or the top 90% (DeepConf-high: the 10th).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Literal

from tts.records import TokenLogprob

Variant = Literal["low", "high"]
PERCENTILE: dict[str, float] = {"low": 90.0, "high": 10.0}
"""The percentile of the warm-up's lowest group confidences that is the threshold: DeepConf-low
keeps the top 10% of traces, DeepConf-high the top 90%."""


def token_confidence(tok: TokenLogprob) -> float:
    """-mean of the token's top-k logprobs (its own logprob when the server gave no alternatives)."""
    top = [float(e["logprob"]) for e in tok.top_logprobs or [] if e.get("logprob") is not None
           and math.isfinite(e["logprob"])]
    if not top:
        return -float(tok.logprob) if math.isfinite(tok.logprob) else 0.0
    return -sum(top) / len(top)


class WindowConfidence:
    """The running group confidence of one trace, a token at a time."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._confs: deque[float] = deque()
        self._sum = 0.0
        self.tokens = 0
        self.lowest: float | None = None
        """The lowest full-window mean so far (None until a window is full)."""
        self._total = 0.0

    def push(self, conf: float) -> float | None:
        """Add one token's confidence; the window's mean once the window is full, else None."""
        self.tokens += 1
        self._total += conf
        self._confs.append(conf)
        self._sum += conf
        if len(self._confs) > self.window:
            self._sum -= self._confs.popleft()
        if len(self._confs) < self.window:
            return None
        mean = self._sum / self.window
        if self.lowest is None or mean < self.lowest:
            self.lowest = mean
        return mean

    def lowest_group(self) -> float | None:
        """The trace's lowest group confidence: the lowest window, or the mean of a trace shorter than one."""
        if self.lowest is not None:
            return self.lowest
        return self._total / self.tokens if self.tokens else None


def lowest_group_confidence(tokens: Sequence[TokenLogprob] | None, window: int) -> float | None:
    w = WindowConfidence(window)
    for tok in tokens or []:
        w.push(token_confidence(tok))
    return w.lowest_group()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between ranks (numpy's default)."""
    ranked = sorted(values)
    if not ranked:
        raise ValueError("no values")
    pos = (len(ranked) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ranked) - 1)
    return ranked[lo] + (ranked[hi] - ranked[lo]) * (pos - lo)


def threshold(lowest: Sequence[float], variant: Variant) -> float:
    return percentile(lowest, PERCENTILE[variant])


def effective_window(window: int, lengths: Sequence[int], short_divisor: int = 10, floor: int = 8) -> int:
    """The window the online check uses: `window`, or for short answers (the warm-up's median
    length under 10 windows' worth) a tenth of that median, at least `floor` tokens. The paper's
    2048 is about a tenth of its reasoning traces; a window as long as the trace never fills."""
    if not lengths:
        return window
    median = sorted(lengths)[len(lengths) // 2]
    return max(1, min(window, max(floor, median // short_divisor)))


def weighted_share(votes: Sequence[tuple[str | None, float]]) -> tuple[str | None, float]:
    """The leading answer and its share of the total vote weight (None, 0 without a valid vote)."""
    tally: dict[str, float] = {}
    for answer, weight in votes:
        if answer is not None:
            tally[answer] = tally.get(answer, 0.0) + weight
    whole = sum(tally.values())
    if not tally or whole <= 0:
        return None, 0.0
    leader = max(sorted(tally), key=lambda a: tally[a])
    return leader, tally[leader] / whole

"""The statistics of a comparison: bootstrap intervals over tasks, paired tests against a
baseline, the Pareto frontier, and a strategy's sequential stages read from its call records.

Pure Python (no numpy), seeded, so the same results give the same intervals.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from tts.records import CallRecord


def bootstrap_ci(outcomes: Sequence[bool | float], *, resamples: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `outcomes` (one per task), resampling tasks."""
    n = len(outcomes)
    if n == 0:
        return (math.nan, math.nan)
    values = [float(x) for x in outcomes]
    if resamples <= 0:
        mean = sum(values) / n
        return (mean, mean)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return _percentiles(means, level)


def _percentiles(sorted_values: list[float], level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    last = len(sorted_values) - 1
    return (sorted_values[round(alpha * last)], sorted_values[round((1 - alpha) * last)])


def paired_bootstrap(row: Sequence[bool], base: Sequence[bool], *, resamples: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """Accuracy difference row - base on the same tasks, and its bootstrap interval (tasks resampled together)."""
    if len(row) != len(base):
        raise ValueError("paired outcomes need the same tasks")
    diffs = [float(a) - float(b) for a, b in zip(row, base, strict=True)]
    n = len(diffs)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    delta = sum(diffs) / n
    if resamples <= 0:
        return (delta, delta, delta)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    low, high = _percentiles(means, level)
    return (delta, low, high)


def mcnemar(row: Sequence[bool], base: Sequence[bool]) -> tuple[int, int, float]:
    """Exact McNemar test on paired outcomes: (wins, losses, two-sided p). Wins are tasks the row
    got right and the baseline wrong; the p-value is the binomial probability of a split at least
    this uneven among the discordant tasks if both were equally good."""
    wins = sum(bool(a) and not bool(b) for a, b in zip(row, base, strict=True))
    losses = sum(bool(b) and not bool(a) for a, b in zip(row, base, strict=True))
    n = wins + losses
    if n == 0:
        return (0, 0, 1.0)
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return (wins, losses, min(1.0, 2 * tail))


def pareto_flags(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, accuracy) points: True when no other point dominates it, i.e. none costs at most as
    much and is at least as accurate while being strictly better in one. (So a row that some other
    row beats on both counts is never on the frontier, and neither is one that only costs more for
    the same accuracy.) NaN accuracy is never on the frontier."""
    flags = []
    for i, (cost, acc) in enumerate(points):
        if math.isnan(acc) or math.isnan(cost):
            flags.append(False)
            continue
        dominated = any(
            j != i and not math.isnan(a) and c <= cost and a >= acc and (c < cost or a > acc)
            for j, (c, a) in enumerate(points)
        )
        flags.append(not dominated)
    return flags


def stages(records: Sequence[CallRecord]) -> int:
    """The sequential stages of one run: the longest chain of calls in which each was issued after
    the previous one had answered (its critical path, counted in calls).

    Read from the call records' issue times (`started_s`, taken before any queueing in the
    throttle) and answer times, so calls issued together count as one stage however long they
    waited for a slot. Exact when calls are not queued; under heavy queueing, two independent
    branches (e.g. two PDR runs inside RTV) can look sequential, so it is then an upper bound."""
    done = sorted(records, key=lambda r: r.started_s)
    depth: list[int] = []
    for i, rec in enumerate(done):
        before = [depth[j] for j in range(i) if done[j].started_s + done[j].latency_s <= rec.started_s]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)

"""RPC: Reasoning-Pruning Perplexity Consistency (Zhou et al., "Bridging Internal Probability and
Self-Consistency for Effective and Efficient LLM Reasoning", 2025).

Perplexity Consistency: each answer is weighted by the summed probability of the distinct
reasoning paths that reach it (identical completions count once: the probability already says
how likely the path is), instead of by a count of votes.
Reasoning Pruning: the paths' probabilities are modelled as a mixture of two Weibull
distributions (a high- and a low-probability cluster); a path is dropped before the vote when
it is more likely to belong to the low cluster AND its probability is below the mean.

Our choices, following the authors' public code where the paper leaves it open:
- a path's probability is exp(mean token logprob) (1 / perplexity, in (0, 1]) by default;
  `length_normalized=False` uses exp(sum of token logprobs) instead;
- the mixture is fitted by EM (weighted maximum likelihood for each Weibull: the shape by
  bisection, the scale in closed form), the mixing weight kept in [0.2, 0.8]; with fewer than
  `min_paths_to_prune` paths, or all probabilities equal, nothing is pruned;
- answer ties are broken by the seeded RNG, as in majority vote.
Needs the generator's logprobs (`tts run` asks for them when the spec uses rpc); without them
it is a ConfigError, not a silent majority vote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Task
from tts.registry import Component, register
from tts.selectors.annotate import with_meta
from tts.selectors.vote import rank_by_answer

NO_LOGPROBS = ("rpc needs the logprobs of every candidate's tokens and the backend returned none; use a backend "
               "that returns logprobs (llama.cpp, vLLM, OpenAI), or another selector such as majority")
_TINY = 1e-12


def path_probability(candidate: Candidate, length_normalized: bool = True) -> float | None:
    """exp(mean) or exp(sum) of the candidate's token logprobs, from `metadata["seq_logprob"]` and
    `metadata["seq_tokens"]` (set by `Strategy.candidate`) or `metadata["logprobs"]`; None if absent."""
    total, count = candidate.metadata.get("seq_logprob"), candidate.metadata.get("seq_tokens")
    if total is None:
        lps = candidate.metadata.get("logprobs")
        if not lps:
            return None
        values = [float(t["logprob"] if isinstance(t, dict) else t.logprob) for t in lps]
        total, count = sum(values), len(values)
    if not count:
        return None
    return math.exp(float(total) / int(count) if length_normalized else float(total))


def _weibull_logpdf(x: float, k: float, lam: float) -> float:
    log_z = math.log(x) - math.log(lam)
    t = k * log_z
    z_k = math.exp(t) if t < 700 else 1e300  # far in the tail: the density is as good as zero
    return max(-1e300, math.log(k / lam) + (k - 1) * log_z - z_k)


def _fit_weibull(xs: Sequence[float], ws: Sequence[float]) -> tuple[float, float]:
    """Weighted maximum-likelihood (shape k, scale lam): k solves
    sum w x^k ln x / sum w x^k - 1/k = sum w ln x / sum w (increasing in k), then lam is closed form."""
    wsum = sum(ws) or _TINY
    mean_log = sum(w * math.log(x) for x, w in zip(xs, ws, strict=True)) / wsum
    top = max(xs)

    def g(k: float) -> float:
        num = sum(w * (x / top) ** k * math.log(x) for x, w in zip(xs, ws, strict=True))
        den = sum(w * (x / top) ** k for x, w in zip(xs, ws, strict=True)) or _TINY
        return num / den - 1.0 / k - mean_log

    lo, hi = 0.01, 500.0
    if g(hi) < 0:
        k = hi
    elif g(lo) > 0:
        k = lo
    else:
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
        k = math.sqrt(lo * hi)
    lam = top * (sum(w * (x / top) ** k for x, w in zip(xs, ws, strict=True)) / wsum) ** (1.0 / k)
    return k, max(lam, _TINY)


def fit_weibull_mixture(xs: Sequence[float], iterations: int = 100) -> tuple[float, float, float, float, float]:
    """(w_high, k_high, lam_high, k_low, lam_low) of a two-Weibull mixture fitted to `xs` by EM,
    the high component being the one with the larger mean."""
    xs = [min(max(x, _TINY), 1.0) for x in xs]
    median = sorted(xs)[len(xs) // 2]
    resp = [0.9 if x >= median else 0.1 for x in xs]  # P(high | x), started from a median split
    w = 0.5
    params = (1.0, 1.0, 1.0, 1.0)
    for _ in range(iterations):
        k1, l1 = _fit_weibull(xs, resp)
        k2, l2 = _fit_weibull(xs, [1 - r for r in resp])
        w = min(0.8, max(0.2, sum(resp) / len(resp)))
        new = []
        for x in xs:
            a = math.log(w) + _weibull_logpdf(x, k1, l1)
            b = math.log(1 - w) + _weibull_logpdf(x, k2, l2)
            new.append(1.0 / (1.0 + math.exp(max(-700.0, min(700.0, b - a)))))
        params = (k1, l1, k2, l2)
        if max(abs(p - q) for p, q in zip(new, resp, strict=True)) < 1e-6:
            break
        resp = new
    k1, l1, k2, l2 = params
    if l1 * math.gamma(1 + 1 / k1) < l2 * math.gamma(1 + 1 / k2):
        return 1 - w, k2, l2, k1, l1
    return w, k1, l1, k2, l2


def prune_mask(probs: Sequence[float], min_paths: int = 4) -> list[bool]:
    """True where a path is KEPT: dropped only when the low cluster is likelier and it is below the mean."""
    if len(probs) < min_paths or max(probs) - min(probs) < 1e-9:
        return [True] * len(probs)
    w, k1, l1, k2, l2 = fit_weibull_mixture(probs)
    mean = sum(probs) / len(probs)
    keep = []
    for p in probs:
        x = min(max(p, _TINY), 1.0)
        high = math.log(w) + _weibull_logpdf(x, k1, l1)
        low = math.log(1 - w) + _weibull_logpdf(x, k2, l2)
        keep.append(not (high < low and p < mean))
    return keep


def rpc_weights(candidates: Sequence[Candidate], probs: Sequence[float], prune: bool = True,
                min_paths: int = 4) -> tuple[list[float], list[bool]]:
    """Per candidate, its vote weight (its path probability; 0 when pruned or a repeat of an earlier
    identical completion) and whether it was kept by pruning."""
    keep = prune_mask(probs, min_paths) if prune else [True] * len(probs)
    seen: set[tuple[str | None, str]] = set()
    weights = []
    for c, p, k in zip(candidates, probs, keep, strict=True):
        key = (c.answer, c.text)
        weights.append(p if k and key not in seen else 0.0)
        if k:
            seen.add(key)
    return weights, keep


@register
class RPC(Component):
    """Perplexity-consistency vote over the paths that survive reasoning pruning."""

    kind: Literal["rpc"] = "rpc"
    prune: bool = True
    """Reasoning pruning on (off: plain perplexity consistency)."""
    length_normalized: bool = True
    """Path probability exp(mean logprob) (True) or exp(sum logprob) (False)."""
    min_paths_to_prune: int = Field(4, ge=2)
    """Fewer paths than this: no mixture is fitted, nothing is pruned."""

    def needs(self) -> frozenset[str]:
        return frozenset({"logprobs"})  # reads the candidates' token logprobs

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        if not candidates:
            return []
        probs = [path_probability(c, self.length_normalized) for c in candidates]
        if any(p is None for p in probs):
            raise ConfigError(NO_LOGPROBS)
        weights, keep = rpc_weights(candidates, [float(p) for p in probs], self.prune,  # type: ignore[arg-type]
                                    self.min_paths_to_prune)
        totals: dict[str | None, float] = {}
        for c, wt in zip(candidates, weights, strict=True):
            totals[c.answer] = totals.get(c.answer, 0.0) + wt
        norm = sum(v for a, v in totals.items() if a is not None) or 1.0
        marked = [with_meta(c, wt, rpc={"path_probability": p, "kept": kp,
                                        "answer_weight": totals[c.answer] / norm if c.answer is not None else 0.0})
                  for c, p, wt, kp in zip(candidates, probs, weights, keep, strict=True)]
        marked.sort(key=lambda c: -(c.score or 0.0))  # stable: each answer's heaviest path represents it
        return rank_by_answer(marked, ctx.rng("vote"), lambda c: c.score or 0.0)[:k]

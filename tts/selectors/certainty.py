"""Self-certainty of a candidate from its logprobs (2025; docs/algorithms.md), and the DeepConf-style
filter that lets only the most self-certain candidates vote. Pure functions, shared by the votes
(`tts.selectors.vote`) and the confidence selectors (`tts.selectors.confidence`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tts.errors import ConfigError
from tts.records import Candidate, TokenLogprob

NO_LOGPROBS = ("the backend returned no logprobs for these candidates; self-certainty needs them "
               "(use a backend that returns logprobs, or another selector such as majority)")


def _entries(tok: Any) -> list[float]:
    top = tok.top_logprobs if isinstance(tok, TokenLogprob) else (tok or {}).get("top_logprobs")
    out = []
    for e in top or []:
        lp = e.get("logprob") if isinstance(e, dict) else getattr(e, "logprob", None)
        if lp is not None and math.isfinite(lp):
            out.append(float(lp))
    return out


def self_certainty(logprobs: Sequence[TokenLogprob | dict] | None) -> float | None:
    """Mean over tokens of KL(uniform over the top-k || p), or None when no token has top_logprobs."""
    per_token = []
    for tok in logprobs or []:
        lps = _entries(tok)
        if len(lps) >= 2:
            per_token.append(-math.log(len(lps)) - sum(lps) / len(lps))
    return sum(per_token) / len(per_token) if per_token else None


def candidate_certainty(c: Candidate) -> float | None:
    sc = c.metadata.get("self_certainty")
    if sc is not None:
        return float(sc)
    return self_certainty(c.metadata.get("logprobs"))


def confident(cands: list[Candidate], keep: float | None, cut: float | None) -> tuple[list[Candidate], float | None]:
    """The candidates that vote when only the most self-certain fraction `keep` does, and the
    self-certainty cut used (from `cands` when `cut` is None)."""
    if keep is None or not cands:
        return cands, None
    values = [candidate_certainty(c) for c in cands]
    if any(v is None for v in values):
        raise ConfigError(f"confidence_keep: {NO_LOGPROBS}")
    if cut is None:
        cut = certainty_cut([float(v) for v in values], keep)  # type: ignore[arg-type]
    return [c for c in cands if keeps(c, cut)], cut


def keeps(c: Candidate, cut: float | None) -> bool:
    v = candidate_certainty(c)
    return cut is None or (v is not None and v >= cut)


def certainty_cut(values: Sequence[float], keep: float) -> float:
    """The self-certainty at or above which the `keep` most self-certain fraction of `values` lies
    (at least one value is kept): DeepConf's percentile threshold."""
    ranked = sorted(values, reverse=True)
    return ranked[max(0, min(len(ranked), round(keep * len(ranked))) - 1)]

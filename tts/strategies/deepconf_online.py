"""DeepConf online (arXiv:2508.15260, Algorithm 2), with traces stopped while they are written.

1. Warm-up: `warmup` traces drawn whole, with top-k logprobs. Their lowest group confidences
   (`tts.selectors.deepconf`) set the threshold: the 90th percentile for DeepConf-low (keeps the
   top 10%), the 10th for DeepConf-high (the top 90%). Warm-up traces at or above it vote.
2. The other traces are streamed (`ChatRequest.on_token`), at most `parallel` at a time (default:
   the warm-up's size), and each is stopped the moment its window's group confidence falls below
   the threshold: the connection is closed, so the server stops generating, and the trace never
   votes. A completed trace votes with its lowest group confidence as its weight.
3. Consensus: after each trace of step 2 ends, once the leading answer holds at least `tau`
   (0.95) of the vote weight, no trace is started and the ones in flight are stopped.

A trace answered from the cache (never streamed) is judged on its whole logprobs by the same rule,
so a warm cache decides exactly as the cold run did.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Completion, Record, RunResult, Task
from tts.seam import StreamView
from tts.selectors.deepconf import (
    PERCENTILE,
    Variant,
    WindowConfidence,
    effective_window,
    lowest_group_confidence,
    threshold,
    token_confidence,
    weighted_share,
)
from tts.selectors.vote import rank_by_answer

if TYPE_CHECKING:
    from tts.strategies.self_consistency import SelfConsistency

TOP_LOGPROBS = 5
NO_LOGPROBS = ("deepconf: the backend returned no logprobs, and DeepConf's confidence is made of them; use a "
               "server that returns logprobs (vLLM, SGLang, llama.cpp, OpenAI), or drop --deepconf")


class StoppedTrace(Record):
    sample_index: int
    at_token: int
    """Tokens received when it was stopped."""
    reason: str
    """"confidence" (its window fell below the threshold) or "consensus" (the vote was decided)."""
    group_confidence: float | None = None
    """The window's confidence that stopped it (for "confidence")."""


class DeepConfRecord(Record):
    variant: str
    percentile: float
    budget: int
    warmup: int
    window: int
    """The window the online check used (`window`, shorter for short answers)."""
    threshold: float | None = None
    tau: float
    drawn: int = 0
    voters: int = 0
    stopped: list[StoppedTrace] = Field(default_factory=list)
    """Streams cut while being written: the server stopped generating them."""
    dropped: list[StoppedTrace] = Field(default_factory=list)
    """Whole traces below the threshold (a cache hit, or one whose last token came with its stop): no vote."""
    share: float = 0.0
    """The leading answer's share of the vote weight at the end."""
    consensus: bool = False


class _Trace:
    """One streamed trace's monitor: stops it below the threshold, or when the vote is decided."""

    def __init__(self, index: int, window: int, cut: float, decided: asyncio.Event) -> None:
        self.index = index
        self.conf = WindowConfidence(window)
        self.cut = cut
        self.decided = decided
        self.stop: StoppedTrace | None = None

    def __call__(self, view: StreamView) -> bool:
        for tok in view.tokens[self.conf.tokens:]:
            group = self.conf.push(token_confidence(tok))
            if group is not None and group < self.cut:
                self.stop = StoppedTrace(sample_index=self.index, at_token=len(view.tokens), reason="confidence",
                                         group_confidence=group)
                return True
        if self.decided.is_set():
            self.stop = StoppedTrace(sample_index=self.index, at_token=len(view.tokens), reason="consensus")
            return True
        return False


async def deepconf_online(sc: SelfConsistency, task: Task, ctx: RunContext) -> RunResult:
    variant: Variant = sc.deepconf  # type: ignore[assignment]
    n = sc.n
    warm = min(n, sc.warmup or max(2, n // 8))
    messages = task.as_messages()
    params: dict[str, Any] = {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
    comps = await ctx.sample(messages, warm, role="sample", start=0, per_request=1, **params)
    if any(not c.logprobs for c in comps):
        raise ConfigError(NO_LOGPROBS)
    window = effective_window(sc.window, [len(c.logprobs or []) for c in comps])
    lows = [lowest_group_confidence(c.logprobs, window) or 0.0 for c in comps]
    cut = threshold(lows, variant)
    record = DeepConfRecord(variant=variant, percentile=PERCENTILE[variant], budget=n, warmup=warm, window=window,
                            threshold=cut, tau=sc.deepconf_tau, drawn=warm)
    cands = [_candidate(sc, c, i, low, low >= cut) for i, (c, low) in enumerate(zip(comps, lows, strict=True))]
    decided = asyncio.Event()

    def voters() -> list[Candidate]:
        return [c for c in cands if c.metadata["deepconf"]["votes"] and c.answer is not None]

    async def trace(i: int) -> None:
        monitor = _Trace(i, window, cut, decided)
        comp = await ctx.complete(messages, role="sample", sample_index=i, on_token=monitor, **params)
        low = lowest_group_confidence(comp.logprobs, window)
        if comp.stopped and monitor.stop is not None:
            record.stopped.append(monitor.stop)
        elif low is not None and low < cut:  # whole: a cache hit, or it ended before the stop took effect
            record.dropped.append(StoppedTrace(sample_index=i, at_token=len(comp.logprobs or []),
                                               reason="confidence", group_confidence=low))
        keep = not comp.stopped and low is not None and low >= cut
        cands.append(_candidate(sc, comp, i, low, keep))
        _, record.share = weighted_share([(c.answer, c.metadata["deepconf"]["confidence"]) for c in voters()])
        if record.share >= sc.deepconf_tau:
            decided.set()

    pending = iter(range(warm, n))
    slots = sc.parallel or warm

    async def worker() -> None:
        for i in pending:
            if decided.is_set():
                return
            record.drawn += 1
            await trace(i)

    await asyncio.gather(*(worker() for _ in range(slots)))
    record.consensus = decided.is_set()
    vote = voters()
    record.voters = len(vote)
    _, record.share = weighted_share([(c.answer, c.metadata["deepconf"]["confidence"]) for c in vote])
    record.stopped.sort(key=lambda s: s.sample_index)
    record.dropped.sort(key=lambda s: s.sample_index)
    cands.sort(key=lambda c: c.metadata["deepconf"]["sample_index"])
    weight = {c.id: c.metadata["deepconf"]["confidence"] for c in vote}
    chosen = rank_by_answer(vote, ctx.rng("vote"), lambda c: weight[c.id])[:sc.select_k]
    return sc.result(task, ctx, chosen, cands, deepconf=record.model_dump())


def _candidate(sc: SelfConsistency, comp: Completion, i: int, low: float | None, votes: bool) -> Candidate:
    return sc.candidate(comp, f"s{i}", deepconf={"sample_index": i, "confidence": low, "votes": votes,
                                                 "stopped": comp.stopped})

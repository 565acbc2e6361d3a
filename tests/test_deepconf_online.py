"""DeepConf online on self-consistency, against the simulated server: the traces the result says
were stopped are the streams the server saw aborted, and the tokens add up at the server."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from tests._sim import settled, simserver
from tts.build import make_backend
from tts.context import SamplingDefaults
from tts.errors import ConfigError
from tts.records import Task, TokenLogprob
from tts.run import run_task
from tts.selectors.deepconf import (
    effective_window,
    lowest_group_confidence,
    percentile,
    threshold,
    token_confidence,
)
from tts.strategies.self_consistency import SelfConsistency

SUMS = [Task(id=f"t{i}", prompt=f"What is {a} + {b}?", answer=str(a + b))
        for i, (a, b) in enumerate([(17, 25), (303, 98), (12, 7)])]


def test_confidence_measures():
    tok = TokenLogprob(token="a", logprob=-0.1, top_logprobs=[{"token": "a", "logprob": -0.1},
                                                             {"token": "b", "logprob": -2.3}])
    assert token_confidence(tok) == pytest.approx(1.2)
    toks = [TokenLogprob(token="x", logprob=-1.0, top_logprobs=[{"token": "x", "logprob": -c}]) for c in
            (3, 3, 1, 1, 3, 3)]
    assert lowest_group_confidence(toks, 2) == pytest.approx(1.0)  # the lowest window of two
    assert lowest_group_confidence(toks, 100) == pytest.approx(14 / 6)  # shorter than the window: its mean
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)  # numpy's linear interpolation
    assert threshold([1, 2, 3, 4], "low") > threshold([1, 2, 3, 4], "high")
    assert effective_window(2048, [400, 390, 410]) == 40 and effective_window(16, [4000]) == 16
    assert effective_window(2048, [30, 30]) == 8


def reset(base: str) -> None:
    urllib.request.urlopen(urllib.request.Request(base.removesuffix("/v1") + "/reset", method="POST"), timeout=5)


@pytest.fixture(scope="module")
def sim():
    with simserver("--ttft", "0.01", "--tpot", "0.004", "--out-tokens", "150", "--p-correct", "0.6") as base:
        yield base


@pytest.mark.parametrize("variant", ["low", "high"])
def test_stopped_traces_are_the_servers_aborted_streams(sim, variant):
    async def go(task):
        b = make_backend("sim", backend="openai", api_base=sim, pricing=False)
        try:
            return await run_task(SelfConsistency(n=16, deepconf=variant), task, b,
                                  defaults=SamplingDefaults(max_tokens=150), seed=3)
        finally:
            await b.aclose()

    for task in SUMS:
        reset(sim)
        res = asyncio.run(go(task))
        s = settled(sim)
        dc = res.metadata["deepconf"]
        assert res.status == "ok" and dc["threshold"] is not None and dc["window"] == 14
        stopped = [c for c in res.candidates if c.metadata["deepconf"]["stopped"]]
        assert len(dc["stopped"]) == len(stopped) == sum(r.stopped for r in res.trace) == s["aborted_streams"]
        assert all(0 < x["at_token"] < 145 for x in dc["stopped"])  # 145 fake words in a whole reply
        assert all(x["at_token"] == 145 for x in dc["dropped"])  # stopped at the last token: whole
        assert not any(c.metadata["deepconf"]["votes"] for c in stopped)  # a stopped trace never votes
        assert s["requests"] == dc["drawn"] == len(res.trace)
        # the server generated what the result says it used (give or take its rounding of words to tokens)
        assert abs(s["completion_tokens"] - res.usage.completion_tokens) <= len(stopped)
        assert s["prompt_tokens"] == res.usage.prompt_tokens


def test_low_stops_more_than_high_and_both_beat_self_consistency(sim):
    async def go(sc):
        b = make_backend("sim", backend="openai", api_base=sim, pricing=False)
        try:
            reset(sim)
            res = [await run_task(sc, t, b, defaults=SamplingDefaults(max_tokens=150), seed=5) for t in SUMS]
            return res, settled(sim)["completion_tokens"]
        finally:
            await b.aclose()

    base_res, base_tokens = asyncio.run(go(SelfConsistency(n=16)))
    for variant in ("high", "low"):
        res, tokens = asyncio.run(go(SelfConsistency(n=16, deepconf=variant)))
        assert tokens < base_tokens
        assert sum(r.correct for r in res) >= sum(r.correct for r in base_res) - 1
        if variant == "high":
            high_tokens = tokens
    assert tokens < high_tokens


def test_deepconf_needs_single_samples_and_logprobs():
    with pytest.raises(ConfigError, match="deepconf"):
        SelfConsistency(n=4, deepconf="low", generator={"kind": "pdr"})

"""Streaming at the seam (`ChatRequest.on_token`), checked against the simulated server's /stats:
a stopped stream is billed what the server generated, is never cached, and caps hold."""

from __future__ import annotations

import asyncio

import pytest

from tests._sim import settled, simserver
from tts.build import make_backend
from tts.errors import BudgetExceeded
from tts.records import Message
from tts.seam import ChatRequest, StreamView
from tts.wrappers import AccountingBackend, CacheBackend


def ask(i: int = 0, **kw) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="What is 17 + 25?")], sample_index=i, seed=i,
                       max_tokens=60, logprobs=True, top_logprobs=3, **kw)


def stop_after(k: int):
    seen: list[StreamView] = []

    def on_token(view: StreamView) -> bool:
        seen.append(view)
        return len(view.tokens) >= k
    return on_token


@pytest.fixture(scope="module")
def sim():
    with simserver("--ttft", "0.02", "--tpot", "0.02", "--out-tokens", "60", "--p-correct", "1") as base:
        yield base


def reset(base: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(base.removesuffix("/v1") + "/reset", method="POST"), timeout=5)


@pytest.mark.parametrize("backend", ["openai", "litellm"])
def test_stopped_stream_is_billed_what_the_server_generated(sim, backend, tmp_path):
    reset(sim)
    model = "sim" if backend == "openai" else "openai/sim"

    async def go():
        b = make_backend(model, backend=backend, api_base=sim, cache_dir=tmp_path / "c", pricing=False)
        try:
            full = (await b.complete(ask(0, on_token=lambda v: False)))[0]
            part = (await b.complete(ask(1, on_token=stop_after(10))))[0]
            return full, part, b.find(AccountingBackend).usage
        finally:
            await b.aclose()

    full, part, paid = asyncio.run(go())
    s = settled(sim)
    assert not full.stopped and full.finish_reason == "stop" and "ANSWER: 42" in full.text
    assert len(full.logprobs) > 10 and full.usage.completion_tokens == 60
    assert part.stopped and part.finish_reason is None and len(part.logprobs) == 10
    assert s["streams"] == 2 and s["aborted_streams"] == 1
    # what we bill equals what the server counted, prompt and completion, for both streams (litellm's
    # stream reads a chunk ahead of what it hands us: the server may have sent one more than we saw)
    slack = 0 if backend == "openai" else 2
    assert 0 <= s["completion_tokens"] - paid.completion_tokens <= slack
    assert paid.prompt_tokens == s["prompt_tokens"]
    assert 0 <= s["completion_tokens"] - 60 - part.usage.completion_tokens <= slack


def test_stopped_stream_is_never_cached_a_completed_one_is(sim, tmp_path):
    reset(sim)

    async def go():
        b = make_backend("sim", backend="openai", api_base=sim, cache_dir=tmp_path / "c", pricing=False)
        try:
            a = (await b.complete(ask(5, on_token=stop_after(5))))[0]
            again = (await b.complete(ask(5)))[0]  # same request, no observer: must go to the server
            third = (await b.complete(ask(5)))[0]  # now a whole answer is stored: a hit
            return a, again, third, b.find(CacheBackend)
        finally:
            await b.aclose()

    a, again, third, _ = asyncio.run(go())
    s = settled(sim)
    assert a.stopped and not again.stopped and not again.cached and third.cached
    assert s["requests"] == 2 and s["aborted_streams"] == 1
    assert third.text == again.text and "ANSWER:" in third.text


def test_identical_stream_waiting_on_a_stopped_one_sends_its_own(sim, tmp_path):
    reset(sim)

    async def go():
        b = make_backend("sim", backend="openai", api_base=sim, cache_dir=tmp_path / "c", pricing=False)
        try:
            return await asyncio.gather(b.complete(ask(7, on_token=stop_after(3))), b.complete(ask(7)))
        finally:
            await b.aclose()

    (stopped,), (whole,) = asyncio.run(go())
    assert stopped.stopped and not whole.stopped and "ANSWER:" in whole.text
    assert settled(sim)["requests"] == 2


def test_caps_hold_with_streams_in_flight(sim):
    reset(sim)
    cap = 400

    async def go():
        b = make_backend("sim", backend="openai", api_base=sim, max_tokens_total=cap, pricing=False)
        done, refused = [], 0
        try:
            res = await asyncio.gather(*(b.complete(ask(i, on_token=stop_after(8 + i % 5))) for i in range(40)),
                                       return_exceptions=True)
            for r in res:
                if isinstance(r, BudgetExceeded):
                    refused += 1
                elif isinstance(r, BaseException):
                    raise r
                else:
                    done.append(r[0])
            return done, refused, b.find(AccountingBackend).usage
        finally:
            await b.aclose()

    done, refused, paid = asyncio.run(go())
    s = settled(sim)
    assert refused and done
    assert paid.total_tokens <= cap and s["prompt_tokens"] + s["completion_tokens"] <= cap
    assert s["aborted_streams"] == len(done) == sum(c.stopped for c in done)

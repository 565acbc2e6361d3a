"""Samples per request (tts.batching): n=K on the wire, one completion and one cache entry per
sample, reuse across K, the fallback for backends without `n`; cached_tokens from provider usage."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from tts.backends._common import cached_prompt_tokens
from tts.backends.openai_http import OpenAIHTTPBackend, parse_chat_body
from tts.build import stack_wrappers
from tts.context import SamplingDefaults
from tts.records import Message, Task
from tts.run import run_task
from tts.seam import ChatRequest
from tts.strategies import SelfConsistency
from tts.testing import LoopbackServer, ScriptedBackend, loopback_reply
from tts.wrappers import AccountingBackend
from tts.wrappers.cache import CacheBackend

TASK = Task(id="t", prompt="What is 20 + 22?", answer="42")


async def sc(server, n, k, cache_dir=None, seed=3):
    backend = stack_wrappers(OpenAIHTTPBackend("loop", server.url), retries=0, cache_dir=cache_dir)
    try:
        res = await run_task(SelfConsistency(n=n), TASK, backend, defaults=SamplingDefaults(seed=seed, n_per_request=k))
        acct = backend.find(AccountingBackend).usage
        entries = len(backend.find(CacheBackend)._disk) if cache_dir else None
    finally:
        await backend.aclose()
    return res, acct, entries


async def test_n_per_request_sends_n_and_keeps_totals_exact(tmp_path):
    async with LoopbackServer(p_correct=0.5) as server:
        res, acct, entries = await sc(server, 10, 4, tmp_path / "c")
        bodies = list(server.bodies)
    assert [b.get("n", 1) for b in bodies] == [4, 4, 2] and server.stats["ok"] == 3
    # one completion per sample, each with its own sample index, each its own trace entry
    assert len(res.candidates) == 10 and sorted(r.sample_index for r in res.trace) == list(range(10))
    assert [b["seed"] for b in bodies] == [3, 7, 11]  # the seed of each request's first sample
    served = [loopback_reply(b)["usage"] for b in bodies]
    assert res.usage.calls == acct.calls == 3
    assert res.usage.prompt_tokens == acct.prompt_tokens == sum(u["prompt_tokens"] for u in served)
    assert res.usage.completion_tokens == acct.completion_tokens == sum(u["completion_tokens"] for u in served)
    assert entries == 10  # one cache entry per sample


async def test_samples_are_reused_across_k_and_larger_n(tmp_path):
    cache = tmp_path / "c"
    async with LoopbackServer(p_correct=0.5) as server:
        first, _, _ = await sc(server, 8, 4, cache)
        assert server.stats["ok"] == 2
        server.reset()
        again, acct, _ = await sc(server, 8, 1, cache)  # one sample per request now: all hits
        # a hit reports what its sample consumed when paid: the 8 samples came from 2 requests
        assert server.stats["requests"] == 0 and acct.calls == 0 and acct.cached_calls == 2
        assert [c.text for c in again.candidates] == [c.text for c in first.candidates]
        assert again.answer == first.answer
        server.reset()
        bigger, acct, entries = await sc(server, 16, 8, cache)  # 8 known, 8 new in one request
        assert [b.get("n", 1) for b in server.bodies] == [8] and server.stats["ok"] == 1
        assert acct.calls == 1 and acct.cached_calls == 2 and entries == 16
        assert [c.text for c in bigger.candidates[:8]] == [c.text for c in first.candidates]
        server.reset()
        # samples 0..15 known: requests 0-5 and 6-11 are all hits, 12-17 sends only 16,17, and 18-19
        mixed, acct, _ = await sc(server, 20, 6, cache)
        assert sorted((b["n"], b["seed"]) for b in server.bodies) == [(2, 3 + 16), (2, 3 + 18)]
        assert acct.calls == 2 and acct.cached_calls == 3  # samples 0, 4 and 8 carried their requests' call
        assert sorted(r.sample_index for r in mixed.trace) == list(range(20))


class NoN(ScriptedBackend):
    supports_n = False


async def test_fallback_on_a_backend_without_n(caplog):
    be = NoN(["ANSWER: 42"])
    with caplog.at_level(logging.WARNING, logger="tts.batching"):
        for _ in range(2):
            res = await run_task(SelfConsistency(n=6), TASK, be, defaults=SamplingDefaults(n_per_request=3))
            assert res.answer == "42" and len(res.candidates) == 6
    assert [r.n for r in be.requests] == [1] * 12
    assert sorted(r.sample_index for r in be.requests) == sorted(list(range(6)) * 2)
    said = [r for r in caplog.records if "does not support n" in r.getMessage()]
    assert len(said) == 1  # said once


async def test_a_server_that_ignores_n_is_noticed_and_the_rest_asked_one_by_one(caplog):
    def one_choice(body):
        return loopback_reply({**body, "n": 1})

    async with LoopbackServer(reply=one_choice) as server:
        with caplog.at_level(logging.WARNING, logger="tts.batching"):
            res, acct, _ = await sc(server, 8, 4)
        ns = [b.get("n", 1) for b in server.bodies]
    assert len(res.candidates) == 8 and sorted(r.sample_index for r in res.trace) == list(range(8))
    assert ns.count(4) == 2 and ns.count(1) == 6 and acct.calls == server.stats["ok"] == 8
    assert sum("answered 1 choice" in r.getMessage() for r in caplog.records) == 1


def test_per_sample_requests_match_the_one_by_one_requests():
    req = ChatRequest(messages=[Message(role="user", content="hi")], n=3, sample_index=4, seed=14)
    singles = req.per_sample()
    assert [(r.n, r.sample_index, r.seed) for r in singles] == [(1, 4, 14), (1, 5, 15), (1, 6, 16)]


def test_cached_tokens_from_openai_and_anthropic_usage():
    body = {"choices": [{"message": {"content": "ANSWER: 1"}}, {"message": {"content": "ANSWER: 2"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 64}}}
    req = ChatRequest(messages=[Message(role="user", content="x")], n=2)
    out = parse_chat_body(body, req, 0.1, "m")
    assert [c.usage.cached_tokens for c in out] == [64, 0]
    assert cached_prompt_tokens(SimpleNamespace(prompt_tokens_details=None, cache_read_input_tokens=30)) == 30
    assert cached_prompt_tokens({"prompt_tokens": 5}) == 0


async def test_cached_tokens_reach_the_run_usage():
    def reply(body):
        out = loopback_reply(body)
        out["usage"]["prompt_tokens_details"] = {"cached_tokens": 7}
        return out

    async with LoopbackServer(reply=reply) as server:
        res, acct, _ = await sc(server, 4, 1)
    assert res.usage.cached_tokens == acct.cached_tokens == 4 * 7


def test_litellm_knows_which_providers_take_n():
    import subprocess
    import sys

    probe = ("from tts.backends.litellm import LiteLLMBackend as L\n"
             "print(L('openai/m', api_base='http://127.0.0.1:9/v1').supports_n,"
             " L('anthropic/claude-3-5-sonnet-20240620', api_key='x').supports_n)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr[-500:]

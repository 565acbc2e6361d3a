"""The HTTP path against the project's own loopback server: both backends, every fault, a batch."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tts.backends._common import parse_retry_after
from tts.backends.openai_http import OpenAIHTTPBackend
from tts.build import make_backend
from tts.errors import (
    AuthError,
    CallTimeout,
    ConfigError,
    ConnectionFailed,
    MalformedResponse,
    PermanentError,
    RateLimited,
    ServerError,
)
from tts.records import Message, Task
from tts.seam import ChatRequest
from tts.testing import LoopbackServer
from tts.wrappers import AccountingBackend, RetryBackend


def req(text: str = "What is 2 + 3?", **kw) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **kw)


def lean(server: LoopbackServer, **kw) -> OpenAIHTTPBackend:
    return OpenAIHTTPBackend("loop", server.url, api_key="sk-test", **kw)


def litellm_backend(server: LoopbackServer, **kw):
    from tts.backends.litellm import LiteLLMBackend

    return LiteLLMBackend("openai/loop", api_base=server.url, api_key="sk-test", **kw)


async def fast_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


# -- the lean backend -------------------------------------------------------------------------------

async def test_lean_backend_parses_choices_usage_and_logprobs() -> None:
    async with LoopbackServer() as server:
        backend = lean(server)
        out = await backend.complete(req("What is 2 + 3?", n=3, sample_index=4, logprobs=True, temperature=0.5))
        await backend.aclose()
    assert [c.text.splitlines()[-1] for c in out] == ["ANSWER: 5"] * 3
    assert [c.sample_index for c in out] == [4, 5, 6]
    body = server.bodies[0]
    assert body["model"] == "loop" and body["n"] == 3 and body["temperature"] == 0.5
    total = sum((c.usage for c in out[1:]), out[0].usage)
    assert total.calls == 1 and total.completion_tokens == 3 * 7 and total.prompt_tokens == out[0].usage.prompt_tokens
    assert out[1].usage.prompt_tokens == 0
    assert out[0].logprobs and out[0].logprobs[0].token == "2"
    assert out[0].model == "loop" and out[0].finish_reason == "stop" and out[0].latency_s > 0
    assert "sk-test" not in backend.namespace and backend.namespace == f"openai:{server.url}:loop"


@pytest.mark.parametrize(("fault", "error"), [
    ("429", RateLimited), ("500", ServerError), ("malformed", MalformedResponse), ("401", AuthError),
    ("400", PermanentError), ("drop", ConnectionFailed),
])
async def test_lean_backend_maps_each_fault(fault: str, error: type) -> None:
    async with LoopbackServer() as server:
        backend = lean(server)
        server.faults.append(fault)
        with pytest.raises(error) as info:
            await backend.complete(req())
        await backend.aclose()
    assert type(info.value) is error
    if fault == "429":
        assert info.value.retry_after == 1.0 and info.value.status == 429


async def test_lean_backend_timeout_and_refused_connection() -> None:
    async with LoopbackServer(hang_s=5) as server:
        backend = lean(server, timeout=0.2)
        server.faults.append("hang")
        with pytest.raises(CallTimeout):
            await backend.complete(req())
        await backend.aclose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    backend = OpenAIHTTPBackend("m", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ConnectionFailed):
        await backend.complete(req())
    await backend.aclose()


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(when) <= 31
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("fault", ["429", "500", "hang", "malformed", "drop"])
async def test_each_fault_is_retried_to_success(fault: str) -> None:
    async with LoopbackServer(hang_s=5, retry_after="0.1") as server:
        backend = RetryBackend(lean(server), timeout=0.5, sleep=fast_sleep)
        server.faults.append(fault)
        out = await backend.complete(req("What is 4 + 4?"))
        await backend.aclose()
    assert out[0].text.endswith("ANSWER: 8")
    assert server.stats["requests"] == 2 and server.stats["ok"] == 1
    assert backend.retries == 1


async def test_the_stack_times_out_a_hung_call_with_the_lean_clients_own_timer() -> None:
    # make_backend's retry wrapper adds no timer over the lean client's (same length): a hung
    # request still ends in CallTimeout after `timeout` and is retried to success
    async with LoopbackServer(hang_s=5) as server:
        backend = make_backend("loop", backend="openai", api_base=server.url, api_key="sk-test", timeout=0.3,
                               retries=1, pricing=False)
        backend.find(RetryBackend)._sleep = fast_sleep
        assert backend.find(RetryBackend)._bounded_below
        server.faults.append("hang")
        started = time.perf_counter()
        out = await backend.complete(req("What is 4 + 4?"))
        elapsed = time.perf_counter() - started
        server.faults.extend(["hang", "hang"])
        with pytest.raises(CallTimeout):
            await backend.complete(req("What is 4 + 5?"))
        await backend.aclose()
    assert out[0].text.endswith("ANSWER: 8") and 0.3 <= elapsed < 4
    assert server.stats["requests"] == 4 and server.stats["ok"] == 1


async def test_retry_waits_for_retry_after_from_the_server() -> None:
    async with LoopbackServer(retry_after="0.4") as server:
        backend = RetryBackend(lean(server), base_delay=0.01)
        server.faults.append("429")
        started = time.perf_counter()
        await backend.complete(req())
        await backend.aclose()
    assert time.perf_counter() - started >= 0.4


@pytest.mark.parametrize("fault", ["401", "400"])
async def test_caller_mistakes_are_not_retried(fault: str) -> None:
    async with LoopbackServer() as server:
        backend = RetryBackend(lean(server), sleep=fast_sleep)
        server.faults.append(fault)
        with pytest.raises(PermanentError):
            await backend.complete(req())
        await backend.aclose()
    assert server.stats["requests"] == 1


# -- the litellm backend ----------------------------------------------------------------------------

async def test_litellm_backend_answers_and_maps_faults() -> None:
    async with LoopbackServer(hang_s=5) as server:
        backend = litellm_backend(server, timeout=0.5)
        out = await backend.complete(req("What is 2 + 3?", n=2))
        assert [c.text.splitlines()[-1] for c in out] == ["ANSWER: 5"] * 2
        assert out[0].usage.calls == 1 and out[1].usage.calls == 0 and out[0].usage.prompt_tokens > 0
        assert backend.namespace == f"litellm:{server.url}:openai/loop"
        expected = {"429": RateLimited, "500": ServerError, "malformed": ServerError, "hang": CallTimeout,
                    "401": AuthError, "400": PermanentError}
        for fault, error in expected.items():
            server.faults.append(fault)
            with pytest.raises(error) as info:
                await backend.complete(req())
            assert type(info.value) is error, fault
            if fault == "429":
                assert info.value.retry_after == 1.0
        # litellm's own retries are off: one request per call
        assert server.stats["requests"] == 1 + len(expected)


async def test_litellm_backend_retried_to_success() -> None:
    async with LoopbackServer(retry_after="0.1") as server:
        backend = RetryBackend(litellm_backend(server), sleep=fast_sleep)
        server.faults.extend(["429", "500", "malformed"])
        out = await backend.complete(req("What is 1 + 1?"))
    assert out[0].text.endswith("ANSWER: 2")
    assert server.stats["requests"] == 4 and backend.retries == 3


async def test_missing_api_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="model 'gpt-4o-mini' needs OPENAI_API_KEY"):
        make_backend("gpt-4o-mini")
    # with an endpoint of its own, a key is the server's business
    async with LoopbackServer() as server:
        backend = make_backend("openai/loop", api_base=server.url)
        out = await backend.complete(req("What is 1 + 1?"))
        await backend.aclose()
    assert out[0].text.endswith("ANSWER: 2")


def test_builder_rejects_unknown_backend_and_missing_base() -> None:
    with pytest.raises(ConfigError, match="litellm, openai"):
        make_backend("m", backend="vllm")
    with pytest.raises(ConfigError, match="api_base"):
        make_backend("m", backend="openai")


def test_builder_delegates_local_to_the_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    class FakeLocal:
        namespace = "local:fake"
        model = "local"

        async def complete(self, request):
            raise AssertionError

    monkeypatch.setitem(sys.modules, "tts.local", types.SimpleNamespace(LocalBackend=FakeLocal))
    backend = make_backend("local")
    layer = backend
    while getattr(layer, "inner", None) is not None:
        layer = layer.inner
    assert isinstance(layer, FakeLocal) and backend.namespace == "local:fake"


# -- a batch under the fault mix ---------------------------------------------------------------------

MIX = {"p429": 0.10, "p500": 0.10, "phang": 0.02, "pmalformed": 0.02}


async def _batch(kind: str, tasks: int, tmp_path) -> None:
    from tts.run import run_many
    from tts.strategies.single import SingleSample

    async with LoopbackServer(latency=0.02, hang_s=2.0, seed=7, **MIX) as server:
        if kind == "openai":
            backend = make_backend("loop", backend="openai", api_base=server.url, cache_dir=tmp_path)
        else:
            backend = make_backend("openai/loop", api_base=server.url, api_key="sk-test", cache_dir=tmp_path)
        batch = [Task(id=f"t{i}", prompt=f"What is {i} + {i % 7}?", answer=str(i + i % 7)) for i in range(tasks)]
        results = await run_many(SingleSample(), batch, backend)
        await backend.aclose()
    stats = server.stats
    assert [r.status for r in results] == ["ok"] * tasks
    assert all(r.correct for r in results)
    assert stats["repeats_of_completed"] == 0
    assert stats["ok"] == tasks
    assert stats["e429"] + stats["e500"] + stats["hung"] + stats["malformed"] > tasks * 0.1  # the faults happened
    assert backend.find(RetryBackend).retries == stats["requests"] - tasks
    assert backend.find(AccountingBackend).usage.calls == tasks


async def test_lean_batch_under_fault_mix_completes_every_task(tmp_path) -> None:
    await _batch("openai", 300, tmp_path)


async def test_litellm_batch_under_fault_mix_completes_every_task(tmp_path) -> None:
    await _batch("litellm", 100, tmp_path)


# -- standalone server -------------------------------------------------------------------------------

def test_loopback_server_runs_standalone() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tts.testing", "serve", "--port", "0", "--latency", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("loopback server listening on http://127.0.0.1:")
        url = line.split()[-1]
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "3 + 4"}]}).encode()
        for _ in range(2):
            post = urllib.request.Request(url + "/chat/completions", data=body,
                                          headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(post, timeout=10) as r:
                reply = json.load(r)
        assert reply["choices"][0]["message"]["content"].endswith("ANSWER: 7")
        with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as r:
            stats = json.load(r)
        assert stats["requests"] == 2 and stats["ok"] == 2 and stats["repeats_of_completed"] == 1
    finally:
        proc.terminate()
        proc.wait(10)

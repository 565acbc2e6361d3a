"""`tts serve` through the official openai SDK, against the project's loopback server upstream.

Every figure is checked against what the upstream server itself counted (its stats and the
usage of the replies it sent), never against our own counters.
"""

import asyncio
import json

import pytest

from tts.backends.openai_http import OpenAIHTTPBackend
from tts.build import stack_wrappers
from tts.serve.app import TTSServer
from tts.spec import strategy_from_spec
from tts.testing import LoopbackServer, loopback_reply

openai = pytest.importorskip("openai")


class Served:
    """A reply function for LoopbackServer that also sums the usage of every reply it sent."""

    def __init__(self, reply=loopback_reply):
        self.reply = reply
        self.prompt_tokens = self.completion_tokens = self.replies = 0

    def __call__(self, body):
        out = self.reply(body)
        self.replies += 1
        self.prompt_tokens += out["usage"]["prompt_tokens"]
        self.completion_tokens += out["usage"]["completion_tokens"]
        return out


def upstream_stack(server, **kw):
    kw.setdefault("retries", 0)
    return stack_wrappers(OpenAIHTTPBackend("loopback", server.url), pricing=False, **kw)


async def start(server, spec=None, **kw):
    strategy = strategy_from_spec(spec or {"kind": "self-consistency", "n": 4})
    tts = TTSServer(strategy, upstream_stack(server, **kw.pop("stack", {})), model="loopback", **kw)
    return await tts.start()


def client(tts, key="unused"):
    return openai.AsyncOpenAI(base_url=tts.url, api_key=key, max_retries=0)


async def test_default_strategy_answers_with_usage_equal_to_what_upstream_served():
    served = Served()
    async with LoopbackServer(reply=served) as up:
        tts = await start(up)
        try:
            r = await client(tts).chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "What is 12 + 30?"}])
        finally:
            await tts.stop()
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop"
    assert "ANSWER: 42" in r.choices[0].message.content and r.choices[0].message.role == "assistant"
    assert up.stats["ok"] == served.replies == 4
    assert r.usage.prompt_tokens == served.prompt_tokens
    assert r.usage.completion_tokens == served.completion_tokens
    assert r.usage.total_tokens == served.prompt_tokens + served.completion_tokens
    extra = r.model_extra["tts"]
    assert extra["strategy"] == "self-consistency" and extra["answer"] == "42"
    assert extra["calls"] == {"answered": 4, "cached": 0, "failed": 0}
    assert extra["digest"]["votes"] == {"42": 4.0} and len(extra["trace_id"]) == 32
    assert r.id == "chatcmpl-" + extra["trace_id"]


async def test_per_request_spec_and_partial_override():
    async with LoopbackServer() as up:
        tts = await start(up)
        c = client(tts)
        try:
            r = await c.chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "Name a Greek letter."}],
                extra_body={"tts": {"kind": "best-of-n", "n": 3, "selector": {"kind": "listwise-judge"}}})
            assert up.stats["ok"] == 4  # 3 samples + 1 judge call
            assert r.model_extra["tts"]["strategy"] == "best-of-n"
            up.reset()
            r2 = await c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": "1 + 1?"}],
                                                 extra_body={"tts": {"n": 2}})  # no kind: the default, n changed
            assert up.stats["ok"] == 2 and r2.model_extra["tts"]["spec"]["n"] == 2
            assert r2.model_extra["tts"]["strategy"] == "self-consistency"
        finally:
            await tts.stop()


async def test_bad_spec_is_a_400_naming_the_field_and_allowed_values():
    async with LoopbackServer() as up:
        tts = await start(up)
        c = client(tts)
        msgs = [{"role": "user", "content": "hi"}]
        try:
            with pytest.raises(openai.BadRequestError) as e:
                await c.chat.completions.create(model="loopback", messages=msgs, extra_body={"tts": {"kind": "nope"}})
            assert "unknown strategy kind 'nope'" in e.value.message and "self-consistency" in e.value.message
            assert e.value.body["param"] == "tts"
            with pytest.raises(openai.BadRequestError, match="field 'n'"):
                await c.chat.completions.create(model="loopback", messages=msgs, extra_body={"tts": {"n": 0}})
            with pytest.raises(openai.BadRequestError, match=r"distill.*allowed: 'summary', 'top-k' or 'random-k'"):
                await c.chat.completions.create(model="loopback", messages=msgs,
                                                extra_body={"tts": {"kind": "pdr", "distill": "bogus"}})
            with pytest.raises(openai.BadRequestError, match=r"budget: field 'max_calls'"):
                await c.chat.completions.create(model="loopback", messages=msgs,
                                                extra_body={"tts": {"budget": {"max_calls": 0}}})
            with pytest.raises(openai.BadRequestError, match="messages"):
                await c.chat.completions.create(model="loopback", messages=[{"role": "robot", "content": "x"}])
            with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
                await c.chat.completions.create(model="loopback", messages=msgs, n=3)
        finally:
            await tts.stop()
    assert up.stats["requests"] == 0  # nothing bad was sent upstream


async def test_streaming_with_and_without_usage():
    served = Served()
    async with LoopbackServer(reply=served) as up:
        tts = await start(up)
        c = client(tts)
        msgs = [{"role": "user", "content": "What is 2 + 5?"}]
        try:
            plain = await c.chat.completions.create(model="loopback", messages=msgs)
            served.prompt_tokens = served.completion_tokens = 0
            up.reset()
            parts, last = [], None
            async for chunk in await c.chat.completions.create(model="loopback", messages=msgs, stream=True):
                assert chunk.object == "chat.completion.chunk"
                assert chunk.usage is None
                parts.extend(ch.delta.content or "" for ch in chunk.choices)
                last = chunk
            assert "".join(parts) == plain.choices[0].message.content
            assert last.choices[0].finish_reason == "stop" and last.model_extra["tts"]["strategy"] == "self-consistency"
            served.prompt_tokens = served.completion_tokens = 0
            chunks = [ch async for ch in await c.chat.completions.create(
                model="loopback", messages=msgs, stream=True, stream_options={"include_usage": True})]
            assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == served.prompt_tokens
            assert chunks[-1].usage.completion_tokens == served.completion_tokens > 0
            assert all(ch.usage is None for ch in chunks[:-1])
        finally:
            await tts.stop()


async def test_stream_sends_progress_comments_while_the_strategy_runs_then_done():
    import aiohttp

    async with LoopbackServer(latency=0.3) as up:
        tts = await start(up, spec={"kind": "sequential-refinement", "rounds": 3}, keepalive_s=0.1)
        try:
            async with aiohttp.ClientSession() as s, s.post(tts.url + "/chat/completions", json={
                    "model": "loopback", "stream": True, "messages": [{"role": "user", "content": "3 + 4?"}]}) as resp:
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                text = (await resp.read()).decode()
        finally:
            await tts.stop()
    lines = [ln for ln in text.split("\n") if ln]
    comments = [ln for ln in lines if ln.startswith(":")]
    assert comments[0] == ": tts: sequential-refinement started"
    assert any("calls answered" in c for c in comments[1:]), comments
    assert any("round 2/3" in c for c in comments), comments
    assert not any("round 4" in c for c in comments), comments
    # progress comes before any data, and the stream ends with [DONE]
    first_data = next(i for i, ln in enumerate(lines) if ln.startswith("data:"))
    assert all(not ln.startswith(":") for ln in lines[first_data:])
    assert lines[-1] == "data: [DONE]"


def weather_reply():
    """Upstream that answers tool-wise: a get_weather call (3 of 4 samples agree on the city, with
    the arguments spelled differently), then, once the tool result is in, a final answer."""
    count = {"n": 0}

    def reply(body):
        msgs = body["messages"]
        if msgs[-1]["role"] == "tool":
            msg = {"role": "assistant", "content": f"It is {json.loads(msgs[-1]['content'])['temp']} C in Paris."}
            finish = "stop"
        else:
            k = count["n"]
            count["n"] += 1
            args = ['{"city": "Paris", "unit": "c"}', '{"unit":"c","city":"Paris"}', '{"city":"Rome","unit":"c"}',
                    '{ "city" : "Paris" , "unit" : "c" }'][k % 4]
            msg = {"role": "assistant", "content": None,
                   "tool_calls": [{"id": f"call_{k}", "type": "function",
                                   "function": {"name": "get_weather", "arguments": args}}]}
            finish = "tool_calls"
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}
    return reply


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string"}, "unit": {"type": "string"}}}}}]


async def test_tool_call_conversation_votes_on_the_call_and_returns_it_intact():
    async with LoopbackServer(reply=weather_reply()) as up:
        tts = await start(up)
        c = client(tts)
        messages = [{"role": "system", "content": "You are a weather bot."},
                    {"role": "user", "content": "Weather in Paris?"}]
        try:
            r = await c.chat.completions.create(model="loopback", messages=messages, tools=TOOLS,
                                                tool_choice="auto", temperature=0.9)
            msg = r.choices[0].message
            assert r.choices[0].finish_reason == "tool_calls" and msg.content is None
            call = msg.tool_calls[0]
            # the winner of the vote (Paris, 3 of 4, however spelled), returned exactly as it came
            assert call.id in ("call_0", "call_1", "call_3") and call.function.name == "get_weather"
            assert call.function.arguments == {"call_0": '{"city": "Paris", "unit": "c"}',
                                               "call_1": '{"unit":"c","city":"Paris"}',
                                               "call_3": '{ "city" : "Paris" , "unit" : "c" }'}[call.id]
            votes = r.model_extra["tts"]["digest"]["votes"]
            assert votes == {'get_weather({"city":"Paris","unit":"c"})': 3.0,
                             'get_weather({"city":"Rome","unit":"c"})': 1.0}
            for body in up.bodies:  # every sample carried the tools and the client's parameters
                assert body["tools"] == TOOLS and body["tool_choice"] == "auto" and body["temperature"] == 0.9
                assert body["messages"] == messages
            # the agent runs the tool and sends the result back with the assistant turn as it came
            up.reset()
            messages += [msg.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp": 21})}]
            r2 = await c.chat.completions.create(model="loopback", messages=messages, tools=TOOLS)
        finally:
            await tts.stop()
    assert r2.choices[0].message.content == "It is 21 C in Paris." and r2.choices[0].finish_reason == "stop"
    sent = up.bodies[0]["messages"]
    assert sent[2]["tool_calls"][0]["id"] == call.id and sent[3] == messages[3]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]


async def test_tool_call_streamed_is_parsed_by_the_sdk():
    async with LoopbackServer(reply=weather_reply()) as up:
        tts = await start(up, spec={"kind": "single"})
        try:
            stream = await client(tts).chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "Paris?"}], tools=TOOLS, stream=True)
            calls, finish = {}, None
            async for chunk in stream:
                for ch in chunk.choices:
                    for tc in ch.delta.tool_calls or []:
                        calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
                        calls[tc.index]["arguments"] += tc.function.arguments or ""
                    finish = ch.finish_reason or finish
        finally:
            await tts.stop()
    assert finish == "tool_calls"
    assert calls == {0: {"id": "call_0", "name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}}


async def test_multi_turn_with_system_message_passes_upstream_as_it_is():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"})
        messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 1 + 1?"},
                    {"role": "assistant", "content": "2"}, {"role": "user", "content": "And 20 + 22?"}]
        try:
            r = await client(tts).chat.completions.create(
                model="loopback", messages=messages, max_tokens=64, top_p=0.5, stop=["\n\n"], seed=7,
                response_format={"type": "text"}, presence_penalty=0.1, user="u1")
        finally:
            await tts.stop()
    assert "ANSWER: 42" in r.choices[0].message.content
    body = up.bodies[0]
    assert body["messages"] == messages
    assert body["max_tokens"] == 64 and body["top_p"] == 0.5 and body["stop"] == ["\n\n"] and body["seed"] == 7
    assert body["response_format"] == {"type": "text"} and body["presence_penalty"] == 0.1 and body["user"] == "u1"
    assert "tts" not in body and "stream" not in body


async def test_client_bookkeeping_fields_in_messages_are_dropped_and_named():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"})
        messages = [{"role": "user", "content": "1 + 1?"},
                    {"role": "assistant", "content": "2", "refusal": None, "audio": None,
                     "provider_specific_fields": {"x": 1}},
                    {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}]
        try:
            r = await client(tts).chat.completions.create(model="loopback", messages=messages)
        finally:
            await tts.stop()
    assert up.bodies[0]["messages"][1] == {"role": "assistant", "content": "2"}
    assert up.bodies[0]["messages"][2] == {"role": "developer", "content": "Be brief."}
    assert r.model_extra["tts"]["ignored_message_fields"] == ["provider_specific_fields"]


async def test_judge_calls_do_not_get_the_clients_tools_or_format():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "best-of-n", "n": 2, "selector": {"kind": "listwise-judge"}})
        try:
            await client(tts).chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "Pick a letter."}], tools=TOOLS,
                tool_choice="required", response_format={"type": "json_object"})
        finally:
            await tts.stop()
    samples = [b for b in up.bodies if b["messages"][-1]["content"] == "Pick a letter."]
    judges = [b for b in up.bodies if b not in samples]
    assert len(samples) == 2 and len(judges) == 1
    assert all(b["tool_choice"] == "required" and b["response_format"] == {"type": "json_object"} for b in samples)
    assert all("tools" not in b and "tool_choice" not in b and "response_format" not in b for b in judges)


async def test_auth_token():
    async with LoopbackServer() as up:
        tts = await start(up, token="s3cret-token-123")
        msgs = [{"role": "user", "content": "1 + 2?"}]
        try:
            with pytest.raises(openai.AuthenticationError, match="bearer token"):
                await client(tts, key="wrong").chat.completions.create(model="loopback", messages=msgs)
            r = await client(tts, key="s3cret-token-123").chat.completions.create(model="loopback", messages=msgs)
            assert "ANSWER: 3" in r.choices[0].message.content
            import aiohttp

            async with aiohttp.ClientSession() as s:
                async with s.get(tts.url + "/models") as resp:
                    assert resp.status == 401
                async with s.get(tts.url.removesuffix("/v1") + "/health") as resp:
                    assert resp.status == 200 and (await resp.json())["status"] == "ok"
        finally:
            await tts.stop()
    assert up.stats["ok"] == 4  # only the authorized request reached upstream


async def test_models_endpoint_and_body_size_limit():
    import aiohttp

    async with LoopbackServer() as up:
        tts = await start(up, max_body_bytes=10_000)
        try:
            models = await client(tts).models.list()
            assert [m.id for m in models.data] == ["loopback"]
            async with aiohttp.ClientSession() as s, s.post(tts.url + "/chat/completions", json={
                    "model": "loopback", "messages": [{"role": "user", "content": "x" * 20_000}]}) as resp:
                assert resp.status == 413
                err = (await resp.json())["error"]
                assert "10,000 bytes" in err["message"] and err["code"] == "request_too_large"
        finally:
            await tts.stop()
    assert up.stats["requests"] == 0


async def test_per_request_budget_holds_at_the_server_and_returns_what_was_paid():
    async with LoopbackServer() as up:
        tts = await start(up, stack={"concurrency": 1})
        try:
            r = await client(tts).chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "Say a word."}],
                extra_body={"tts": {"n": 8, "budget": {"max_calls": 3}}})
        finally:
            await tts.stop()
    assert up.stats["ok"] == 3  # the cap held upstream
    t = r.model_extra["tts"]
    assert t["status"] == "budget_exceeded" and "max_calls=3" in t["error"]
    assert r.choices[0].finish_reason == "length" and r.choices[0].message.content.startswith("Thinking")
    assert t["usage"]["calls"] == 3


async def test_server_wide_budget_spent_is_a_429_the_sdk_does_not_retry():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"}, stack={"max_calls": 2})
        c = openai.AsyncOpenAI(base_url=tts.url, api_key="x", max_retries=3)
        msgs = [{"role": "user", "content": "1 + 2?"}]
        try:
            await c.chat.completions.create(model="loopback", messages=msgs)
            await c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": "2 + 2?"}])
            with pytest.raises(openai.RateLimitError, match="max_calls=2"):
                await c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": "3 + 2?"}])
        finally:
            await tts.stop()
    assert up.stats["ok"] == 2
    assert tts.requests_served == 3  # x-should-retry: false, so the SDK asked once


async def test_the_requests_model_names_the_upstream_model():
    async with LoopbackServer() as up:
        made = []

        def other(model):
            made.append(model)
            if model == "broken":
                raise ValueError("no route to it")
            return stack_wrappers(OpenAIHTTPBackend(model, up.url), retries=0, pricing=False)

        tts = await start(up, spec={"kind": "single"}, backend_for_model=other)
        tts.backend = stack_wrappers(OpenAIHTTPBackend("openai/loopback", up.url), retries=0, pricing=False)
        tts.model = "openai/loopback"
        c = client(tts)
        msgs = [{"role": "user", "content": "1 + 2?"}]
        try:
            for name in ("openai/loopback", "loopback", "tts"):  # the server's model, bare or prefixed, or "tts"
                r = await c.chat.completions.create(model=name, messages=msgs)
                assert r.model == "openai/loopback"
            r = await c.chat.completions.create(model="gpt-other", messages=msgs)
            assert r.model == "gpt-other" and made == ["gpt-other"]
            await c.chat.completions.create(model="gpt-other", messages=msgs)
            assert made == ["gpt-other"]  # one stack per model, reused
            assert [m.id for m in (await c.models.list()).data] == ["openai/loopback", "gpt-other"]
            with pytest.raises(openai.BadRequestError, match="'broken' cannot be served: no route"):
                await c.chat.completions.create(model="broken", messages=msgs)
        finally:
            await tts.stop()
    assert [b["model"] for b in up.bodies] == ["openai/loopback"] * 3 + ["gpt-other"] * 2


async def test_upstream_failures_map_to_openai_errors():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"})
        c = client(tts)
        msgs = [{"role": "user", "content": "1 + 2?"}]
        try:
            up.faults = ["400"]
            with pytest.raises(openai.BadRequestError, match="upstream refused"):
                await c.chat.completions.create(model="loopback", messages=msgs)
            up.faults = ["500"]
            with pytest.raises(openai.APIStatusError, match="upstream call failed") as e:
                await c.chat.completions.create(model="loopback", messages=msgs)
            assert e.value.status_code == 502
            up.faults = ["500"]
            stream = await c.chat.completions.create(model="loopback", messages=msgs, stream=True)
            with pytest.raises(openai.APIError, match="upstream call failed"):
                async for _ in stream:
                    pass
        finally:
            await tts.stop()


async def test_200_concurrent_requests_share_one_throttle():
    served = Served()
    async with LoopbackServer(latency=0.02, reply=served) as up:
        tts = await start(up, spec={"kind": "self-consistency", "n": 2}, stack={"concurrency": 8})
        c = client(tts)
        try:
            rs = await asyncio.wait_for(asyncio.gather(*(
                c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": f"{i} + 1?"}])
                for i in range(200))), timeout=120)
        finally:
            await tts.stop()
    assert all(f"ANSWER: {i + 1}" in r.choices[0].message.content for i, r in enumerate(rs))
    assert up.stats["ok"] == 400 and up.stats["max_in_flight"] <= 8
    assert sum(r.usage.total_tokens for r in rs) == served.prompt_tokens + served.completion_tokens


async def test_traces_per_request_are_readable_by_tts_show(tmp_path, capsys):
    from tts.cli.main import main
    from tts.trace import read_trace

    async with LoopbackServer() as up:
        tts = await start(up, trace_dir=tmp_path)
        try:
            r = await client(tts).chat.completions.create(model="loopback",
                                                          messages=[{"role": "user", "content": "4 + 4?"}])
        finally:
            await tts.stop()
    path = tmp_path / f"{r.model_extra['tts']['trace_id']}.jsonl"
    trace = read_trace(path)
    assert len(trace.calls) == 4 and trace.results[0].answer == "8"
    assert trace.header.meta["strategy"]["kind"] == "self-consistency"
    assert trace.results[0].usage.total_tokens == r.usage.total_tokens
    assert main(["show", str(path)]) == 0
    assert "self-consistency" in capsys.readouterr().out


async def test_cached_answers_are_free_and_flagged(tmp_path):
    async with LoopbackServer() as up:
        tts = await start(up, stack={"cache_dir": tmp_path / "cache"})
        c = client(tts)
        msgs = [{"role": "user", "content": "5 + 5?"}]
        try:
            await c.chat.completions.create(model="loopback", messages=msgs)
            again = await c.chat.completions.create(model="loopback", messages=msgs)
        finally:
            await tts.stop()
    assert up.stats["ok"] == 4  # the second request was served from the cache
    assert again.model_extra["tts"]["calls"]["cached"] == 4
    assert "ANSWER: 10" in again.choices[0].message.content

"""`tts serve` as Anthropic's Messages API (`/v1/messages`), through the official anthropic SDK.

The loopback server upstream speaks chat completions; every figure is checked against the usage
of the replies it sent (`Served`), never against our own counters.
"""

import json

import pytest
from test_serve import Served, start, weather_reply

from tts.testing import LoopbackServer

anthropic = pytest.importorskip("anthropic")

WEATHER = [{"name": "get_weather", "description": "weather in a city", "cache_control": {"type": "ephemeral"},
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}]


def client(tts, key="unused"):
    return anthropic.AsyncAnthropic(base_url=tts.url.removesuffix("/v1"), api_key=key, max_retries=0)


async def test_tools_across_two_turns_with_usage_equal_to_what_upstream_served():
    served = Served(weather_reply())
    async with LoopbackServer(reply=served) as up:
        tts = await start(up)  # self-consistency, n=4
        c = client(tts)
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        system = [{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}]
        try:
            r = await c.messages.create(model="claude-sonnet-4-5", max_tokens=1024, system=system, messages=messages,
                                        tools=WEATHER, tool_choice={"type": "auto"},
                                        thinking={"type": "enabled", "budget_tokens": 2000},
                                        metadata={"user_id": "u1"})
            assert r.type == "message" and r.model == "claude-sonnet-4-5" and r.stop_reason == "tool_use"
            use = r.content[0]
            assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"city": "Paris", "unit": "c"}
            assert (r.usage.input_tokens, r.usage.output_tokens) == (served.prompt_tokens, served.completion_tokens)
            assert served.replies == 4
            for body in up.bodies:
                assert body["messages"] == [{"role": "system", "content": "You are a weather bot."},
                                            {"role": "user", "content": "Weather in Paris?"}]
                assert body["tools"][0]["function"]["parameters"] == WEATHER[0]["input_schema"]
                assert body["max_tokens"] == 1024 and body["tool_choice"] == "auto"
                assert "thinking" not in body and "metadata" not in body
            assert r.model_extra["tts"]["fields_not_sent"] == ["metadata", "thinking"]
            up.reset()
            served.replies = served.prompt_tokens = served.completion_tokens = 0
            messages += [{"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                                           *[b.model_dump(exclude_none=True) for b in r.content]]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                       "content": [{"type": "text", "text": '{"temp": 21}'}]}]}]
            r2 = await c.messages.create(model="claude-sonnet-4-5", max_tokens=1024, system=system,
                                         messages=messages, tools=WEATHER)
        finally:
            await tts.stop()
    assert r2.stop_reason == "end_turn" and r2.content[0].text == "It is 21 C in Paris."
    assert (r2.usage.input_tokens, r2.usage.output_tokens) == (served.prompt_tokens, served.completion_tokens)
    sent = up.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"][0]["id"] == use.id and json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) \
        == {"city": "Paris", "unit": "c"}
    assert sent[3] == {"role": "tool", "tool_call_id": use.id, "content": '{"temp": 21}'}
    assert r2.model_extra["tts"]["ignored_blocks"] == {"thinking": 1}


async def test_stream_text_with_pings_while_the_strategy_runs():
    import aiohttp

    served = Served()
    request = {"model": "claude-haiku-4-5", "max_tokens": 300, "messages": [{"role": "user", "content": "5 + 6?"}]}
    async with LoopbackServer(reply=served, latency=0.05) as up:
        tts = await start(up, spec={"kind": "sequential-refinement", "rounds": 2}, keepalive_s=0.01)
        try:
            async with client(tts).messages.stream(**request) as s:
                kinds = [e.type async for e in s]  # the SDK hides pings
                final = await s.get_final_message()
            async with aiohttp.ClientSession() as session, session.post(
                    tts.url + "/messages", json={**request, "stream": True}) as resp:
                raw = (await resp.read()).decode()
        finally:
            await tts.stop()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "ANSWER: 11" in final.content[0].text and final.stop_reason == "end_turn"
    assert served.replies == 4  # two per request: the attempt and its refinement
    assert 2 * final.usage.input_tokens == served.prompt_tokens
    assert 2 * final.usage.output_tokens == served.completion_tokens
    names = [ln.removeprefix("event: ") for ln in raw.splitlines() if ln.startswith("event: ")]
    assert names[0] == "message_start" and names[1] == "ping" and names[-1] == "message_stop"
    last_ping = max(i for i, n in enumerate(names) if n == "ping")
    assert names[last_ping + 1:] == ["content_block_start", "content_block_delta", "content_block_stop",
                                     "message_delta", "message_stop"]


async def test_stream_tool_use():
    async with LoopbackServer(reply=weather_reply()) as up:
        tts = await start(up, spec={"kind": "single"})
        try:
            async with client(tts).messages.stream(model="claude-sonnet-4-5", max_tokens=100, tools=WEATHER,
                                                   messages=[{"role": "user", "content": "Paris?"}]) as s:
                events = [e async for e in s]
                final = await s.get_final_message()
        finally:
            await tts.stop()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris", "unit": "c"}
    assert final.content[0].id == "call_0"


async def test_count_tokens_bad_request_auth_with_x_api_key_and_builtin_tools():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"}, token="tok-abcdef")
        c = client(tts, "tok-abcdef")
        msgs = [{"role": "user", "content": "What is 1 + 2?"}]
        try:
            n = await c.messages.count_tokens(model="claude-sonnet-4-5", messages=msgs, tools=WEATHER)
            n_plain = await c.messages.count_tokens(model="claude-sonnet-4-5", messages=msgs)
            assert n.input_tokens > n_plain.input_tokens > 0
            with pytest.raises(anthropic.BadRequestError) as bad:
                await c.messages.create(model="claude-sonnet-4-5", max_tokens=10,
                                        messages=[{"role": "robot", "content": "x"}])
            assert bad.value.body["error"]["type"] == "invalid_request_error"
            assert "messages[0].role" in bad.value.body["error"]["message"]
            with pytest.raises(anthropic.AuthenticationError) as denied:
                await client(tts, "wrong").messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=msgs)
            assert denied.value.body == {"type": "error", "error": {"type": "authentication_error", "message": (
                "missing or wrong bearer token or x-api-key: send 'Authorization: Bearer <token>' (the openai SDK's "
                "api_key) or 'x-api-key: <token>' (the anthropic SDK's)")}}
            assert up.stats["ok"] == 0  # neither counting nor refusing calls the model
            r = await c.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=msgs, tools=[
                {"type": "web_search_20250305", "name": "web_search"}, *WEATHER])
        finally:
            await tts.stop()
    assert "ANSWER: 3" in r.content[0].text and r.model_extra["tts"]["builtin_tools_not_sent"] == ["web_search"]
    assert [t["function"]["name"] for t in up.bodies[0]["tools"]] == ["get_weather"]


async def test_upstream_failure_and_spent_budget_in_anthropic_shape():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"}, stack={"max_calls": 2})
        c = anthropic.AsyncAnthropic(base_url=tts.url.removesuffix("/v1"), api_key="x", max_retries=3)
        msgs = [{"role": "user", "content": "What is 1 + 2?"}]
        try:
            up.faults = ["500"]
            with pytest.raises(anthropic.InternalServerError) as failed:  # no retries in our server's stack
                await client(tts).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=msgs)
            for _ in range(2):  # the server's cap: two calls (the failed one is not counted)
                await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=msgs)
            served = tts.requests_served
            with pytest.raises(anthropic.RateLimitError, match="max_calls=2") as spent:
                await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=msgs)
        finally:
            await tts.stop()
    assert failed.value.status_code == 502 and failed.value.body["error"]["type"] == "api_error"
    assert spent.value.body["error"]["type"] == "rate_limit_error"
    assert tts.requests_served == served + 1  # x-should-retry: false, so the SDK asked once
    assert up.stats["ok"] == 2


def tool_turn_reply(body):
    """A tool-calling turn for the conversation (it carries the tools); anything else (a judge's,
    a refiner's prompt) answered as the loopback server does."""
    from tts.testing import loopback_reply

    if not body.get("tools"):
        return loopback_reply(body)
    msg = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    return {"id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}


SMALL = {"best-of-n": {"n": 2}, "self-consistency": {"n": 2}, "generate-select": {"n": 2}, "pdr": {"drafts": [2, 1]},
         "sequential-refinement": {"rounds": 2}}


TEXT_ONLY = {"solver-grader", "conjecture-extraction"}  # they refuse a turn with tools: a 400 in each protocol


def every_strategy():
    import tts.registry

    return list(tts.registry.kinds("strategy"))


@pytest.mark.parametrize("kind", every_strategy())
async def test_every_strategy_answers_a_tool_calling_turn_in_both_protocols(kind):
    import openai

    async with LoopbackServer(reply=tool_turn_reply) as up:
        tts = await start(up, spec={"kind": kind, **SMALL.get(kind, {})})
        if kind in TEXT_ONLY:
            try:
                with pytest.raises(anthropic.BadRequestError, match="answers in text only"):
                    await client(tts).messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=WEATHER,
                                                      messages=[{"role": "user", "content": "Weather in Paris?"}])
                with pytest.raises(openai.BadRequestError, match="answers in text only"):
                    await openai.AsyncOpenAI(base_url=tts.url, api_key="x", max_retries=0).responses.create(
                        model="gpt-5-codex", input="Weather in Paris?", store=False, tools=[
                            {"type": "function", "name": "get_weather", "parameters": WEATHER[0]["input_schema"]}])
            finally:
                await tts.stop()
            assert not up.bodies  # refused before any upstream call
            return
        try:
            m = await client(tts).messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=WEATHER,
                                                  messages=[{"role": "user", "content": "Weather in Paris?"}])
            r = await openai.AsyncOpenAI(base_url=tts.url, api_key="x", max_retries=0).responses.create(
                model="gpt-5-codex", input="Weather in Paris?", store=False, tools=[
                    {"type": "function", "name": "get_weather", "parameters": WEATHER[0]["input_schema"]}])
        finally:
            await tts.stop()
    assert m.model_extra["tts"]["strategy"] == kind
    assert m.stop_reason == "tool_use" and m.content[-1].input == {"city": "Paris"}
    assert r.output[-1].type == "function_call" and r.output[-1].arguments == '{"city": "Paris"}'


async def test_stream_failure_is_an_error_event_in_anthropic_shape():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"})
        up.faults = ["500"]
        try:
            with pytest.raises(anthropic.APIStatusError) as failed:
                async with client(tts).messages.stream(model="claude-sonnet-4-5", max_tokens=10,
                                                       messages=[{"role": "user", "content": "1 + 2?"}]) as s:
                    async for _ in s:
                        pass
        finally:
            await tts.stop()
    assert failed.value.body["error"]["type"] == "api_error"
    assert "upstream call failed" in failed.value.body["error"]["message"]

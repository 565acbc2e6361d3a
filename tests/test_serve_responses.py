"""`tts serve` as OpenAI's Responses API (`/v1/responses`), through the official openai SDK.

The loopback server upstream speaks chat completions; every figure is checked against the usage
of the replies it sent (`Served`), never against our own counters.
"""

import json

import pytest
from test_serve import Served, start, weather_reply

from tts.testing import LoopbackServer

openai = pytest.importorskip("openai")

WEATHER = [{"type": "function", "name": "get_weather", "description": "weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}]


def client(tts, key="unused"):
    return openai.AsyncOpenAI(base_url=tts.url, api_key=key, max_retries=0)


async def test_string_input_answers_with_usage_equal_to_what_upstream_served():
    served = Served()
    async with LoopbackServer(reply=served) as up:
        tts = await start(up)
        try:
            r = await client(tts).responses.create(model="gpt-5-codex", input="What is 12 + 30?",
                                                   instructions="Be brief.", max_output_tokens=200, temperature=0.7)
        finally:
            await tts.stop()
    assert r.object == "response" and r.status == "completed" and r.model == "gpt-5-codex"
    assert "ANSWER: 42" in r.output_text
    assert [i.type for i in r.output] == ["message"] and r.output[0].content[0].type == "output_text"
    assert served.replies == 4 == up.stats["ok"]  # self-consistency n=4
    assert (r.usage.input_tokens, r.usage.output_tokens) == (served.prompt_tokens, served.completion_tokens)
    assert r.usage.total_tokens == served.prompt_tokens + served.completion_tokens
    body = up.bodies[0]  # the translation: instructions first, the client's model mapped to ours
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is 12 + 30?"}]
    assert body["model"] == "loopback" and body["max_tokens"] == 200 and body["temperature"] == 0.7
    assert r.model_extra["tts"]["strategy"] == "self-consistency"


async def test_function_tool_across_two_turns():
    async with LoopbackServer(reply=weather_reply()) as up:
        tts = await start(up)
        c = client(tts)
        try:
            r = await c.responses.create(model="m", input=[{"role": "user", "content": "Weather in Paris?"}],
                                         tools=WEATHER, tool_choice="auto", store=False,
                                         reasoning={"effort": "low"}, include=["reasoning.encrypted_content"])
            calls = [i for i in r.output if i.type == "function_call"]
            assert len(calls) == 1 and calls[0].name == "get_weather"
            assert json.loads(calls[0].arguments) == {"city": "Paris", "unit": "c"}  # the vote's winner
            assert calls[0].call_id.startswith("call_")
            for body in up.bodies:  # every sample carried the tools as chat function tools
                assert body["tools"] == [{"type": "function", "function": {k: v for k, v in WEATHER[0].items()
                                                                           if k != "type"}}]
                assert body["tool_choice"] == "auto" and "reasoning" not in body and "include" not in body
            assert r.model_extra["tts"]["fields_not_sent"] == ["include", "reasoning", "store"]
            up.reset()
            # the agent runs the tool and sends everything back (store=False: no server state), with a
            # reasoning item as real clients carry them
            history = [{"role": "user", "content": "Weather in Paris?"},
                       {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                       calls[0].model_dump(exclude_none=True),
                       {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp": 21}'}]
            r2 = await c.responses.create(model="m", input=history, tools=WEATHER, store=False)
        finally:
            await tts.stop()
    assert r2.output_text == "It is 21 C in Paris." and r2.status == "completed"
    sent = up.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == calls[0].call_id and sent[2]["tool_call_id"] == calls[0].call_id
    assert r2.model_extra["tts"]["ignored_items"] == {"reasoning": 1}


async def test_previous_response_id_continues_a_stored_response_and_unknown_ids_are_a_400():
    async with LoopbackServer(reply=weather_reply()) as up:
        tts = await start(up, spec={"kind": "single"})
        c = client(tts)
        try:
            r = await c.responses.create(model="m", input="Weather in Paris?", tools=WEATHER)
            call = r.output[0]
            r2 = await c.responses.create(model="m", previous_response_id=r.id, tools=WEATHER, input=[
                {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 19}'}])
            assert r2.output_text == "It is 19 C in Paris." and r2.previous_response_id == r.id
            with pytest.raises(openai.BadRequestError, match="send the whole history") as exc:
                await c.responses.create(model="m", previous_response_id="resp_unknown", input="hi")
        finally:
            await tts.stop()
    assert exc.value.body["param"] == "previous_response_id"
    assert [m["role"] for m in up.bodies[-1]["messages"]] == ["user", "assistant", "tool"]


async def test_text_format_json_schema_goes_upstream_as_response_format():
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}

    def reply(body):
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": 4}'},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}

    async with LoopbackServer(reply=reply) as up:
        tts = await start(up, spec={"kind": "self-consistency", "n": 3})
        try:
            r = await client(tts).responses.create(model="m", input="2 + 2 as JSON", text={"format": {
                "type": "json_schema", "name": "sum", "schema": schema, "strict": True}})
        finally:
            await tts.stop()
    assert json.loads(r.output_text) == {"answer": 4} and r.text.format.type == "json_schema"
    assert all(b["response_format"] == {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema,
                                                                                "strict": True}} for b in up.bodies)
    assert r.usage.input_tokens == 27 and r.usage.output_tokens == 9


async def test_stream_text_events_in_order_with_the_final_usage():
    served = Served()
    async with LoopbackServer(reply=served) as up:
        tts = await start(up, keepalive_s=0.01)
        try:
            async with client(tts).responses.stream(model="m", input="What is 5 + 6?") as stream:
                kinds = [e.type async for e in stream]
                final = await stream.get_final_response()
        finally:
            await tts.stop()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds[2:5] == ["response.output_item.added", "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert "ANSWER: 11" in final.output_text
    assert (final.usage.input_tokens, final.usage.output_tokens) == (served.prompt_tokens, served.completion_tokens)


async def test_stream_function_call_and_builtin_tools_are_not_sent():
    async with LoopbackServer(reply=weather_reply()) as up:
        tts = await start(up, spec={"kind": "single"})
        try:
            async with client(tts).responses.stream(
                    model="m", input="Paris?", tools=[*WEATHER, {"type": "web_search"}]) as stream:
                events = [e async for e in stream]
                final = await stream.get_final_response()
        finally:
            await tts.stop()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == '{"city": "Paris", "unit": "c"}'
    assert final.output[0].type == "function_call" and final.output[0].call_id == "call_0"
    assert [t["function"]["name"] for t in up.bodies[0]["tools"]] == ["get_weather"]
    assert final.model_extra["tts"]["builtin_tools_not_sent"] == ["web_search"]


async def test_namespace_tools_and_errors_in_openai_shape():
    def reply(body):
        msg = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}}]}
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}

    ns = {"type": "namespace", "name": "agents", "description": "sub-agents",
          "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object", "properties": {}}}]}
    async with LoopbackServer(reply=reply) as up:
        tts = await start(up, spec={"kind": "single"}, token="tok-abcdef")
        try:
            r = await client(tts, "tok-abcdef").responses.create(model="m", input="go", tools=[ns])
            with pytest.raises(openai.AuthenticationError):
                await client(tts, "wrong").responses.create(model="m", input="go")
            with pytest.raises(openai.BadRequestError, match="unknown tool type 'nope'"):
                await client(tts, "tok-abcdef").responses.create(model="m", input="go", tools=[{"type": "nope"}])
        finally:
            await tts.stop()
    assert up.bodies[0]["tools"][0]["function"]["name"] == "agents__spawn"
    item = r.output[0]
    assert (item.type, item.namespace, item.name) == ("function_call", "agents", "spawn")
    assert up.stats["ok"] == 1


async def test_stream_failure_is_response_failed():
    async with LoopbackServer() as up:
        tts = await start(up, spec={"kind": "single"})
        up.faults = ["500"]
        try:
            async with client(tts).responses.stream(model="m", input="1 + 2?") as stream:
                events = [e async for e in stream]
        finally:
            await tts.stop()
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "upstream_failed" and "HTTP 500" in failed.error.message


async def test_model_map_routes_a_clients_model_to_another_upstream_and_names_the_asked_one():
    from test_serve import upstream_stack

    made = []

    async with LoopbackServer() as up:
        def other(model):
            made.append(model)
            return upstream_stack(up)

        tts = await start(up, spec={"kind": "single"}, backend_for_model=other,
                          model_map={"gpt-5-mini*": "small-upstream"})
        c = client(tts)
        try:
            r1 = await c.responses.create(model="gpt-5-codex", input="1 + 2?")
            r2 = await c.responses.create(model="gpt-5-mini-2026", input="1 + 2?")
            r3 = await c.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "1 + 2?"}])
        finally:
            await tts.stop()
    assert (r1.model, r2.model) == ("gpt-5-codex", "gpt-5-mini-2026")
    assert made == ["small-upstream"] and r3.model == "small-upstream"  # one stack, on every route


def test_bad_model_map_exits_2_with_one_line(capsys):
    from tts.cli.main import main

    assert main(["serve", "--model", "m", "--model-map", "claude-sonnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected FROM=TO" in err

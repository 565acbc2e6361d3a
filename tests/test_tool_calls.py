"""Candidates that are tool calls: one canonical answer per (function, parsed arguments), judges
see the call rendered, the message comes back intact; and `tts serve` on the embedded model."""

import json

import pytest

from tts.context import RunContext
from tts.records import Candidate, Completion, Message, Task
from tts.spec import strategy_from_spec
from tts.strategies.single import SingleSample
from tts.testing import ScriptedBackend, request_text
from tts.tool_calls import render_tool_calls, tool_calls_key


def call(name, args, cid="c"):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def test_key_ignores_spacing_and_key_order_but_not_values_or_names():
    a = tool_calls_key([call("f", '{"x": 1, "y": [1, 2]}')])
    assert a == tool_calls_key([call("f", '{ "y":[1,2],"x":1 }', "other-id")]) == 'f({"x":1,"y":[1,2]})'
    assert a != tool_calls_key([call("f", '{"x": 2, "y": [1, 2]}')])
    assert a != tool_calls_key([call("g", '{"x": 1, "y": [1, 2]}')])
    # parallel calls: order does not matter; arguments that are not JSON compare as text
    assert tool_calls_key([call("a", "{}"), call("b", "{}")]) == tool_calls_key([call("b", "{}"), call("a", "{}")])
    assert tool_calls_key([call("f", "not json")]) == 'f("not json")'


def test_render_shows_text_then_each_call():
    text = render_tool_calls("Let me check.", [call("get_weather", '{"city":"Paris"}')])
    assert text == 'Let me check.\n[tool call] get_weather({"city": "Paris"})'


def test_candidate_of_a_tool_call_keeps_the_message_and_round_trips():
    calls = [call("bash", json.dumps({"command": "ls"}), "call_9")]
    cand = SingleSample().candidate(Completion(text="", tool_calls=calls, finish_reason="tool_calls"), "s0")
    assert cand.answer == 'bash({"command":"ls"})' and "[tool call] bash" in cand.text
    assert cand.message == Message(role="assistant", tool_calls=calls)
    assert cand.metadata["finish_reason"] == "tool_calls"
    assert Candidate.model_validate_json(cand.model_dump_json()) == cand


async def test_self_consistency_votes_on_calls_and_a_judge_sees_them_rendered():
    replies = [Completion(text="", tool_calls=[call("f", a, f"id{i}")]) for i, a in
               enumerate(['{"v": 1}', '{"v":1}', '{"v": 2}'])]
    backend = ScriptedBackend(lambda req: replies[req.sample_index] if "WINNER" not in request_text(req) and
                              "Candidate" not in request_text(req) else "WINNER: 1")
    task = Task(id="t", messages=[Message(role="user", content="call f")])
    sc = strategy_from_spec({"kind": "self-consistency", "n": 3})
    res = await sc.solve(task, RunContext(backend))
    assert res.answer == 'f({"v":1})' and res.best.message.tool_calls[0]["id"] in ("id0", "id1")
    backend.requests.clear()
    bon = strategy_from_spec({"kind": "best-of-n", "n": 3, "selector": {"kind": "listwise-judge", "show": "text"}})
    await bon.solve(task, RunContext(backend))
    judge = [r for r in backend.requests if r.messages[-1].content != "call f"]
    assert len(judge) == 1 and '[tool call] f({"v": 2})' in request_text(judge[0])


@pytest.mark.local_model
async def test_tts_serve_on_the_embedded_model():
    openai = pytest.importorskip("openai")
    from tts import local
    from tts.build import make_backend
    from tts.serve.app import TTSServer

    if not all(local._installed(m) for m in local._REQUIRED):
        pytest.skip("the 'local' extra is not installed")
    backend = make_backend("local")
    server = await TTSServer(strategy_from_spec({"kind": "self-consistency", "n": 2}), backend, model="local").start()
    try:
        c = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0)
        r = await c.chat.completions.create(model="local", max_tokens=24,
                                            messages=[{"role": "user", "content": "What is 2 + 2?"}])
    finally:
        await server.stop()
        await server.aclose_backends()
    assert r.choices[0].message.content and r.usage.total_tokens > 0
    assert r.model_extra["tts"]["calls"]["answered"] == 2

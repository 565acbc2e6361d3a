"""Agent turns: every strategy answers a tool-calling, structured-output conversation, from Python and
through `tts serve` with the official openai SDK, against a scripted upstream (`tts.testing.agent_turns`)
that answers tool calls and JSON and records every request. The tools, tool choice and format reach every
call that answers the task and no judge, distill or summary call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import openai
import pytest

from tts.backends.openai_http import OpenAIHTTPBackend
from tts.context import CANDIDATE_ROLES
from tts.errors import ConfigError
from tts.records import Message, Task
from tts.run import run_task
from tts.serve.app import TTSServer
from tts.spec import strategy_from_spec
from tts.testing import LoopbackServer
from tts.testing.agent_turns import WEATHER_SCHEMA, WEATHER_TOOL, agent_reply
from tts.wrappers.accounting import AccountingBackend

STRATEGIES = {
    "single": {"kind": "single"},
    "self-consistency": {"kind": "self-consistency", "n": 5},
    "best-of-n-listwise": {"kind": "best-of-n", "n": 4, "selector": {"kind": "listwise-judge"}},
    "rtv": {"kind": "rtv", "n": 4, "group_size": 2, "votes": 1},
    "pdr-summary": {"kind": "pdr", "drafts": 4, "rounds": 2, "distill": "summary"},
    "pdr-top-k": {"kind": "pdr", "drafts": 4, "rounds": 2, "distill": "top-k"},
    "pdr-random-k": {"kind": "pdr", "drafts": 4, "rounds": 2, "distill": "random-k"},
    "sequential-refinement": {"kind": "sequential-refinement", "rounds": 3},
}
ASK = [Message(role="user", content="What is the weather in Paris? Use the tool.")]
SEED = 1  # with this seed the single sample and SR's first draft are in the majority (Paris)


def paris_call(message: dict) -> bool:
    calls = message.get("tool_calls") or []
    return len(calls) == 1 and calls[0]["function"]["name"] == "get_weather" \
        and json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}


def check_reach(bodies: list[dict], trace: list, key: str) -> None:
    """The turn's `key` is on exactly the answering calls: as many bodies carry it as the trace has calls in
    a candidate role, and no judge, distill or summary prompt carries it."""
    answering = sum(1 for r in trace if r.role in CANDIDATE_ROLES)
    assert answering >= 1
    assert sum(1 for b in bodies if key in b) == answering
    assert len(bodies) == len(trace)
    for b in bodies:  # a judge's prompt never carries the turn
        if "WINNER:" in json.dumps(b["messages"][-1]):
            assert key not in b, f"a judge call got {key}"


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_python_api_answers_a_tool_calling_turn(name):
    strategy = strategy_from_spec(STRATEGIES[name])
    async with LoopbackServer(reply=agent_reply) as up:
        backend = OpenAIHTTPBackend("loopback", up.url)
        try:
            task = Task(id="t", messages=ASK, tools=[WEATHER_TOOL], tool_choice="auto")
            result = await run_task(strategy, task, backend, seed=SEED)
        finally:
            await backend.aclose()
        bodies = up.bodies
    assert result.status == "ok", result.error
    assert paris_call(result.best.message.to_api()), result.best
    assert result.best.message.tool_calls[0]["id"].startswith("call_")  # the call as the upstream wrote it
    check_reach(bodies, result.trace, "tools")
    assert all(b.get("tool_choice") == "auto" for b in bodies if "tools" in b)
    if name in ("best-of-n-listwise", "rtv", "pdr-summary"):  # judges and the summary call went without tools
        assert any("tools" not in b for b in bodies)


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_python_api_answers_a_schema_turn(name):
    strategy = strategy_from_spec(STRATEGIES[name])
    async with LoopbackServer(reply=agent_reply) as up:
        backend = OpenAIHTTPBackend("loopback", up.url)
        try:
            task = Task(id="t", messages=[Message(role="user", content="Weather in Paris as JSON.")],
                        response_format=WEATHER_SCHEMA)
            result = await run_task(strategy, task, backend, seed=SEED)
        finally:
            await backend.aclose()
        bodies = up.bodies
    assert result.status == "ok", result.error
    assert json.loads(result.best.text) == {"city": "Paris", "temp_c": 18}
    assert result.answer == '{"city": "Paris", "temp_c": 18}'  # canonical: keys sorted, whatever the order
    check_reach(bodies, result.trace, "response_format")


@pytest.fixture
async def served():
    """A `tts serve` over the scripted agent upstream; yields (server, upstream)."""
    async with LoopbackServer(reply=agent_reply) as up:
        tts = TTSServer(strategy_from_spec({"kind": "self-consistency", "n": 3}),
                        OpenAIHTTPBackend("loopback", up.url), model="loopback", port=0)
        await tts.start()
        try:
            yield tts, up
        finally:
            await tts.stop()


def client(tts):
    return openai.AsyncOpenAI(base_url=tts.url, api_key="unused", max_retries=0)


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_through_tts_serve_with_the_openai_sdk(served, name):
    tts, up = served
    c = client(tts)
    r = await c.chat.completions.create(
        model="loopback", messages=[m.to_api() for m in ASK], tools=[WEATHER_TOOL], tool_choice="auto", seed=SEED,
        extra_body={"tts": STRATEGIES[name]})
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert paris_call(msg.model_dump(exclude_none=True))
    answering = r.model_extra["tts"]["calls"]["answered"]
    assert len(up.bodies) == answering
    up.bodies.clear()
    s = await c.chat.completions.create(
        model="loopback", messages=[{"role": "user", "content": "Weather in Paris as JSON."}],
        response_format=WEATHER_SCHEMA, seed=SEED, extra_body={"tts": STRATEGIES[name]})
    assert json.loads(s.choices[0].message.content) == {"city": "Paris", "temp_c": 18}
    assert all(("response_format" in b) == ("WINNER:" not in json.dumps(b["messages"][-1])) for b in up.bodies
               if "WINNER:" in json.dumps(b["messages"][-1]) or "response_format" in b)


async def test_a_multi_turn_agent_loop_through_tts_serve_with_pdr(served):
    tts, up = served
    c = client(tts)
    pdr = {"tts": STRATEGIES["pdr-top-k"]}
    messages = [m.to_api() for m in ASK]
    first = await c.chat.completions.create(model="loopback", messages=messages, tools=[WEATHER_TOOL], seed=SEED,
                                            extra_body=pdr)
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 C"}]
    second = await c.chat.completions.create(model="loopback", messages=messages, tools=[WEATHER_TOOL], seed=SEED,
                                             extra_body=pdr)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "It is 18 C in Paris now."
    last = up.bodies[-1]  # the final draft read the tool result and still had the tools
    assert last["tools"] and any(m["role"] == "tool" for m in last["messages"])


@pytest.mark.parametrize("selector", ["rpc", "p-true", "self-certainty"])
async def test_logprob_selectors_through_tts_serve(selector):
    async with LoopbackServer() as up:
        tts = TTSServer(strategy_from_spec({"kind": "best-of-n", "n": 3, "selector": selector}),
                        OpenAIHTTPBackend("loopback", up.url), model="loopback", port=0)
        await tts.start()
        try:
            r = await client(tts).chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "What is 2 + 3?"}])
        finally:
            await tts.stop()
    assert r.choices[0].message.content.endswith("ANSWER: 5")
    assert any(b.get("logprobs") for b in up.bodies), "logprobs were never asked for upstream"


def test_run_serve_and_python_derive_the_same_needs():
    import argparse

    from tts.cli.run import sampling_defaults
    from tts.context import SamplingDefaults, defaults_for
    from tts.registry import needs

    specs = [{"kind": "best-of-n", "selector": "rpc"}, {"kind": "self-consistency", "consensus": 0.95},
             {"kind": "best-of-n", "selector": {"kind": "confidence-vote"}},
             {"kind": "rtv", "n": 4}, {"kind": "pdr"}, {"kind": "solver-grader"}]
    args = argparse.Namespace(temperature=0.7, max_tokens=512, seed=None, n_per_request=1)
    for spec in specs:
        s = strategy_from_spec(spec)
        python = defaults_for(SamplingDefaults(), s).extra
        cli = sampling_defaults(args, [s]).extra
        assert python == cli, spec
        assert bool(python.get("logprobs")) == ("logprobs" in needs(s)) == (spec["kind"] in ("best-of-n",
                                                                                             "self-consistency"))
    assert "text-only" in needs(strategy_from_spec({"kind": "solver-grader"}))
    assert "text-only" in needs(strategy_from_spec({"kind": "rtv", "generator": {"kind": "conjecture-extraction"}}))


@pytest.mark.parametrize("name", ["pdr-top-k", "rtv"])
async def test_a_budget_stopped_run_through_the_server_is_the_strategys_own_partial(name):
    strategy = strategy_from_spec(STRATEGIES[name])
    cap = 3
    async with LoopbackServer(reply=agent_reply) as up:
        backend = OpenAIHTTPBackend("loopback", up.url)
        try:
            task = Task(id="t", messages=ASK, tools=[WEATHER_TOOL])
            local = await run_task(strategy, task, AccountingBackend(backend, max_calls=cap), seed=SEED)
            tts = TTSServer(strategy, backend, model="loopback", port=0)
            await tts.start()
            try:
                r = await client(tts).chat.completions.create(
                    model="loopback", messages=[m.to_api() for m in ASK], tools=[WEATHER_TOOL], seed=SEED,
                    extra_body={"tts": {"budget": {"max_calls": cap}}})
            finally:
                await tts.stop()
        finally:
            await backend.aclose()
    assert local.status == "budget_exceeded" and local.best is not None
    served = r.model_extra["tts"]
    assert served["status"] == "budget_exceeded" and r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls[0].id == local.best.message.tool_calls[0]["id"]
    assert served["answer"] == local.answer and served["candidates"] == len(local.candidates)


async def test_text_only_strategies_refuse_an_agent_turn(served):
    task = Task(id="t", messages=ASK, tools=[WEATHER_TOOL])
    with pytest.raises(ConfigError, match=r"^solver-grader answers in text only .* use pdr") as err:
        await run_task(strategy_from_spec({"kind": "solver-grader"}), task, OpenAIHTTPBackend("x", "http://127.0.0.1:9"))
    assert "\n" not in str(err.value)
    tts, up = served
    with pytest.raises(openai.BadRequestError, match="conjecture-extraction answers in text only") as bad:
        await client(tts).chat.completions.create(
            model="loopback", messages=[m.to_api() for m in ASK], tools=[WEATHER_TOOL],
            extra_body={"tts": {"kind": "conjecture-extraction"}})
    assert bad.value.status_code == 400 and not up.bodies  # refused before any upstream call


def test_a_bad_turn_is_a_clear_error():
    with pytest.raises(ValueError, match="'tool_choice' names 'nope', which is not one of the tools"):
        Task(id="t", messages=ASK, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "nope"}})
    with pytest.raises(ValueError, match="needs 'tools'"):
        Task(id="t", messages=ASK, tool_choice="auto")
    with pytest.raises(ValueError, match="a tool result needs 'tool_call_id'"):
        Task(id="t", messages=[*ASK, Message(role="tool", content="18")])


def test_one_backend_across_three_event_loops_leaves_nothing_open(tmp_path):
    """Agent code calls asyncio.run more than once: each loop's HTTP session closes with the loop."""
    script = tmp_path / "loops.py"
    script.write_text(textwrap.dedent("""
        import asyncio, gc, sys, threading, time
        import tts
        from tts.testing import LoopbackServer

        box = []
        def serve():
            async def run():
                async with LoopbackServer() as up:
                    box.append(up.url)
                    while len(box) < 2:
                        await asyncio.sleep(0.02)
            asyncio.run(run())
        thread = threading.Thread(target=serve)
        thread.start()
        while not box:
            time.sleep(0.02)
        try:
            from tts.backends.openai_http import OpenAIHTTPBackend
            for backend in (tts.make_backend("openai/loopback", api_base=box[0]), OpenAIHTTPBackend("l", box[0])):
                for _ in range(3):
                    print(asyncio.run(tts.SelfConsistency(n=2).run("1 + 2?", backend)).answer)
                asyncio.run(backend.aclose())
            gc.collect()
        finally:
            box.append("done")
            thread.join()
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-W", "error::ResourceWarning", str(script)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3"] * 6
    assert "Unclosed" not in proc.stderr and "ResourceWarning" not in proc.stderr, proc.stderr

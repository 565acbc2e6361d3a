"""The per-call path builds its records without validation, frees throttle slots early, keeps no
call records in a result unless asked, and runs on uvloop when asked: each stays correct."""

from __future__ import annotations

import asyncio
import builtins

import pytest

from tts.backends._common import parse_chat
from tts.backends.openai_http import parse_chat_body
from tts.context import RunContext, SamplingDefaults, call_record
from tts.errors import ConfigError, MalformedResponse
from tts.records import CallRecord, Completion, Message, Usage
from tts.run import run_sync, run_task
from tts.seam import ChatRequest
from tts.strategies.self_consistency import SelfConsistency
from tts.testing import ScriptedBackend
from tts.wrappers.throttle import ThrottleBackend, answer_received


def test_unvalidated_request_is_the_validated_one():
    ctx = RunContext(ScriptedBackend(["x"]), defaults=SamplingDefaults(seed=3, extra={"top_p": 0.9}), replica="2")
    fast = ctx.request([Message(role="user", content="hi")], sample_index=4)
    slow = ChatRequest.model_validate(fast.model_dump())
    assert fast.halted is not None and slow.halted is None  # the run's stop check is never serialized
    assert fast == slow.model_copy(update={"halted": fast.halted})
    assert fast.fingerprint("ns") == slow.fingerprint("ns")
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.seed == 3 + 4 + int(__import__("hashlib").sha256(b"2").hexdigest()[:6], 16)
    assert fast.extra == {"top_p": 0.9} and fast.extra is not ctx.defaults.extra  # not shared with the defaults
    with pytest.raises(ValueError):  # parameters a strategy passes are still validated
        ctx.request([Message(role="user", content="hi")], max_tokens="lots")


def test_unvalidated_records_round_trip():
    rec = call_record("sc", "sample", 2, Usage.of(3, 4, 1), 0.5, False, 0.1)
    assert CallRecord.model_validate_json(rec.model_dump_json()) == rec
    assert rec == CallRecord(path="sc", role="sample", sample_index=2, usage=Usage(prompt_tokens=3, completion_tokens=4,
                             calls=1), latency_s=0.5, started_s=0.1)


def test_usage_total_adds_every_field():
    parts = [Usage(prompt_tokens=1, completion_tokens=2, calls=1, cached_calls=1, cost_usd=0.25, unpriced_calls=0,
                   cached_tokens=1), Usage(prompt_tokens=5, calls=1, cost_usd=0.5, unpriced_calls=1)]
    total = Usage.total(parts)
    assert total == parts[0] + parts[1] == Usage(prompt_tokens=6, completion_tokens=2, calls=2, cached_calls=1,
                                                  cost_usd=0.75, unpriced_calls=1, cached_tokens=1)
    assert Usage.total([]) == Usage()
    assert parts[0].as_paid(False) == Usage(prompt_tokens=1, completion_tokens=2, calls=1, cost_usd=0.25,
                                            cached_tokens=1)
    assert parts[0].as_paid(True) == Usage()


def test_one_parser_for_json_bodies_and_sdk_objects():
    req = ChatRequest(messages=[Message(role="user", content="q")], sample_index=5)
    body = {"model": "m", "usage": {"prompt_tokens": 7, "completion_tokens": 9},
            "choices": [{"message": {"content": "a"}, "finish_reason": "stop"},
                        {"message": {"content": None, "tool_calls": [
                            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                         "finish_reason": "tool_calls"}]}
    from tts._litellm import import_litellm

    types = import_litellm().types.utils
    sdk = types.ModelResponse(model="m", usage=types.Usage(prompt_tokens=7, completion_tokens=9), choices=[
        types.Choices(message=types.Message(content="a"), finish_reason="stop"),
        types.Choices(message=types.Message(content=None, tool_calls=[
            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
            finish_reason="tool_calls")])
    from_json = parse_chat_body(body, req, 0.2, "fallback")
    from_sdk = parse_chat(sdk, req, 0.2, "fallback", lambda: "sdk")
    assert from_json == from_sdk
    assert [Completion.model_validate(c.model_dump()) for c in from_json] == from_json
    assert [c.sample_index for c in from_json] == [5, 6]
    assert from_json[0].usage.prompt_tokens == 7 and sum(c.usage.completion_tokens for c in from_json) == 9
    for bad in ({"choices": []}, {"choices": [{"message": {"content": 3}}]}, {"choices": [{}]},
                {"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": "many"}}):
        with pytest.raises(MalformedResponse):
            parse_chat_body(bad, req, 0.1, "m")


async def test_a_slot_is_free_once_the_answer_arrives():
    """With one slot, the second call is sent while the first is still being processed."""
    processing = asyncio.Event()
    order: list[str] = []

    class Slow:
        namespace = "slow:x"

        async def complete(self, request: ChatRequest) -> list[Completion]:
            tag = request.messages[0].content
            order.append(f"sent {tag}")
            answer_received()
            if tag == "a":
                await processing.wait()  # parsing/bookkeeping of "a" is still going on
            order.append(f"done {tag}")
            return [Completion(text=str(tag))]

    throttle = ThrottleBackend(Slow(), concurrency=1)

    async def second() -> list[Completion]:
        await asyncio.sleep(0)
        out = await throttle.complete(ChatRequest(messages=[Message(role="user", content="b")]))
        processing.set()
        return out

    a, b = await asyncio.wait_for(asyncio.gather(
        throttle.complete(ChatRequest(messages=[Message(role="user", content="a")])), second()), 5)
    assert order[:3] == ["sent a", "sent b", "done b"]
    assert (a[0].text, b[0].text) == ("a", "b")
    assert throttle.max_in_flight == 1 and throttle.in_flight == 0


async def test_results_carry_call_records_only_when_asked():
    backend = ScriptedBackend(["ANSWER: 1", "ANSWER: 2", "ANSWER: 1"])
    kept = await run_task(SelfConsistency(n=3), "q", backend)
    dropped = await run_task(SelfConsistency(n=3), "q", backend, trace=False)
    assert len(kept.trace) == 3 and dropped.trace == []
    assert dropped.usage == kept.usage and dropped.paid == kept.paid and dropped.usage.calls == 3
    assert dropped.answer == kept.answer == "1"


def test_uvloop_is_opt_in(monkeypatch):
    async def loop_name() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_sync(loop_name()).startswith("asyncio")
    pytest.importorskip("uvloop")
    assert run_sync(loop_name(), uvloop=True).startswith("uvloop")
    real_import = builtins.__import__

    def no_uvloop(name, *args, **kwargs):
        if name == "uvloop":
            raise ImportError("no uvloop")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    coro = loop_name()
    with pytest.raises(ConfigError, match=r"pip install 'tts-scaling\[uvloop\]'"):
        run_sync(coro, uvloop=True)
    coro.close()


async def test_run_many_starts_tasks_as_the_throttle_has_room():
    """40 tasks of 4 samples through 4 slots: every result, in order, with only a few tasks under
    way at once (not all 40); the same without a throttle starts them all."""
    from tts.build import stack_wrappers
    from tts.run import run_many

    live = peak = 0

    class Counting(ScriptedBackend):
        async def complete(self, request: ChatRequest) -> list[Completion]:
            await asyncio.sleep(0.002)
            return await super().complete(request)

    import tts.run as run_mod

    real = run_mod.run_task

    async def tracked(*args, **kwargs):
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        try:
            return await real(*args, **kwargs)
        finally:
            live -= 1

    run_mod.run_task = tracked
    try:
        backend = stack_wrappers(Counting(["ANSWER: 3"]), concurrency=4)
        results = await run_many(SelfConsistency(n=4), [f"q{i}" for i in range(40)], backend)
        fed_peak, peak = peak, 0
        all_at_once = await run_many(SelfConsistency(n=4), [f"q{i}" for i in range(40)], Counting(["ANSWER: 3"]))
    finally:
        run_mod.run_task = real
    assert [r.task_id for r in results] == [f"task{i}" for i in range(40)]
    assert all(r.answer == "3" and r.usage.calls == 4 for r in results)
    assert 1 < fed_peak <= 6, fed_peak  # about concurrency / n tasks, plus the ones just started
    assert peak == 40 and len(all_at_once) == 40


def test_fewer_collections_puts_the_thresholds_back():
    import gc

    from tts.run import YOUNG_THRESHOLD, fewer_collections

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with fewer_collections():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
            with fewer_collections():  # nested batches
                pass
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(50_000, 10, 10)  # a user's higher threshold is kept
        with fewer_collections():
            assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold() == (50_000, 10, 10)
    finally:
        gc.set_threshold(*before)


async def test_records_hold_no_content_unless_asked():
    """Without a trace that wants content, a record references no messages (nothing kept alive)."""
    plain = await run_task(SelfConsistency(n=3), "1 + 1 = ?", ScriptedBackend(["Answer: 2"]))
    assert all(r.messages is None and r.reply is None for r in plain.trace)
    kept = await run_task(SelfConsistency(n=3), "1 + 1 = ?", ScriptedBackend(["Answer: 2"]), trace_content=True)
    assert all(r.messages[0].content == "1 + 1 = ?" and r.reply == "Answer: 2" for r in kept.trace)
    assert kept.trace[0].messages is kept.trace[1].messages or kept.trace[0].messages == kept.trace[1].messages


def test_unvalidated_candidate_and_wire_messages_are_the_validated_ones():
    from tts.backends.streaming import StreamTally
    from tts.records import Candidate
    from tts.strategies.single import SingleSample

    comp = Completion(text="So 3 + 4 = 7.\nAnswer: 7", usage=Usage.of(3, 4, 1))
    fast = SingleSample().candidate(comp, "s0", path="sc")
    slow = Candidate.model_validate(fast.model_dump())
    assert fast == slow and fast.model_dump_json() == slow.model_dump_json() and fast.answer == "7"
    plain = Message(role="user", content="hi", name="ann")
    wire = plain.to_api()
    assert wire == plain.model_dump(exclude_none=True) == {"role": "user", "content": "hi", "name": "ann"}
    wire["content"] = "changed"  # a fresh dict each time: changing it changes nothing else
    assert plain.content == "hi" and plain.to_api() is not plain.to_api()
    parts = Message(role="user", content=[{"type": "text", "text": "hi"}])
    assert parts.to_api() == parts.model_dump(exclude_none=True) and parts.to_api()["content"] is not parts.content
    # the prompt's key: the same messages agree, any difference (text, role, a name, tools) tells them apart
    key = StreamTally.key
    same = [req.model_copy() for req in [ChatRequest(messages=[Message(role="user", content="q")])] * 2]
    assert key(same[0]) == key(same[1])
    others = [ChatRequest(messages=[Message(role="user", content="q2")]),
              ChatRequest(messages=[Message(role="system", content="q")]),
              ChatRequest(messages=[Message(role="user", content="q", name="x")]),
              ChatRequest(messages=[Message(role="user", content="q")], tools=[{"type": "function"}]),
              ChatRequest(messages=[Message(role="user", content="q"), Message(role="user", content="")])]
    assert len({key(r) for r in [same[0], *others]}) == 1 + len(others)


def test_a_body_in_another_encoding_is_still_read():
    from tts.backends.openai_http import _loads

    body = {"choices": [{"message": {"content": "héllo"}}]}
    assert _loads(__import__("json").dumps(body, ensure_ascii=False).encode("utf-16")) == body
    assert _loads(b'{"a": "\xc3\xa9"}') == {"a": "é"}
    with pytest.raises(ValueError):
        _loads(b"{not json")

"""Every shared record round-trips through JSON and rejects unknown fields."""

import pytest
from pydantic import ValidationError

from tts.records import (
    CallRecord,
    Candidate,
    Completion,
    Evidence,
    Message,
    RunResult,
    Step,
    Task,
    TokenLogprob,
    Trajectory,
    TrajectorySummary,
    Usage,
)
from tts.seam import ChatRequest

SUMMARY = TrajectorySummary(
    source_id="r1", hypotheses=["off by one in parse()"], approach="bisect", decisions=["patch parse"],
    actions=["edited parse.py"], files_changed=["parse.py"],
    evidence=[Evidence(kind="command", quote="pytest -x -> 1 failed", exit_code=1)],
    progress="test passes", failure_modes=["none"], open_questions=["unicode?"], final_patch="diff --git a b",
    status_claim="fixed", model="m", usage=Usage(prompt_tokens=3, completion_tokens=4, calls=1), length_tokens=42,
)

SAMPLES = [
    Message(role="assistant", content="hi", tool_calls=[{"id": "1", "type": "function"}]),
    Usage(prompt_tokens=1, completion_tokens=2, calls=1, cached_calls=1, cost_usd=0.5, unpriced_calls=1),
    Completion(text="x", finish_reason="stop", usage=Usage(calls=1), latency_s=0.1, cached=True, model="m",
               sample_index=3, logprobs=[TokenLogprob(token="x", logprob=-0.1)], tool_calls=[{"id": "t"}]),
    Task(id="t1", prompt="2+2?", answer="4", metadata={"k": 1}),
    Task(id="t2", messages=[Message(role="user", content="hi")]),
    Candidate(id="c", text="t", answer="4", summary=SUMMARY, score=0.5),
    Trajectory(id="tr", task_id="t1", messages=[Message(role="user", content="go")],
               steps=[Step(thought="t", action="ls", observation="a.py", exit_code=0)], outcome="Submitted",
               patch="diff"),
    SUMMARY,
    CallRecord(path="pdr/r1", role="draft", sample_index=2, usage=Usage(calls=1), latency_s=0.2, cached=False),
    RunResult(task_id="t1", strategy="pdr", answer="4", chosen=[Candidate(id="c", text="4")], correct=True,
              metadata={"B_seq": 10, "B_total": 30}),
    ChatRequest(messages=[Message(role="user", content="q")], sample_index=2, replica="1.2", seed=5,
                temperature=0.3, max_tokens=9, stop=["\n"], extra={"top_p": 0.9}),
]


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_json_round_trip(record):
    again = type(record).model_validate_json(record.model_dump_json())
    assert again == record


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_unknown_field_rejected(record):
    data = record.model_dump()
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        type(record).model_validate(data)


def test_persisted_records_carry_format_version():
    for rec in (SUMMARY, Trajectory(id="x"), RunResult(task_id="t", strategy="s")):
        assert rec.model_dump()["format_version"] == 1


def test_task_needs_exactly_one_of_prompt_or_messages():
    with pytest.raises(ValidationError, match="exactly one"):
        Task(id="x")
    with pytest.raises(ValidationError, match="exactly one"):
        Task(id="x", prompt="a", messages=[Message(role="user", content="b")])


def test_usage_adds_up():
    total = Usage.total([Usage(prompt_tokens=1, completion_tokens=2, calls=1, cost_usd=0.25),
                         Usage(prompt_tokens=10, cached_calls=1, unpriced_calls=1)])
    assert (total.prompt_tokens, total.completion_tokens, total.calls, total.cached_calls, total.unpriced_calls) == \
        (11, 2, 1, 1, 1)
    assert total.total_tokens == 13 and total.cost_usd == 0.25


def test_fingerprint_depends_on_sample_index_replica_and_params_but_not_on_field_order():
    base = ChatRequest(messages=[Message(role="user", content="q")], temperature=0.5)
    keys = {
        base.fingerprint("m"),
        base.model_copy(update={"sample_index": 1}).fingerprint("m"),
        base.model_copy(update={"replica": "1"}).fingerprint("m"),
        base.model_copy(update={"temperature": 0.6}).fingerprint("m"),
        base.fingerprint("other-model"),
    }
    assert len(keys) == 5
    assert ChatRequest(temperature=0.5, messages=[{"role": "user", "content": "q"}]).fingerprint("m") == \
        base.fingerprint("m")

"""Run context, answers, the run loop and the two baseline strategies, on the scripted backend."""

import asyncio

import pytest

import tts
from tts.answers import check_format, extract_answer, is_correct, normalize
from tts.context import RunContext, SamplingDefaults
from tts.errors import BudgetExceeded, ConfigError, ServerError
from tts.records import Completion, Task, Usage
from tts.testing import ScriptedBackend


@pytest.mark.parametrize("text,fmt,want", [
    ("so 3 + 4 = 7", "last-number", "7"),
    ("1,234 apples", "last-number", "1234"),
    ("x = \\boxed{\\frac{1}{2}} done", "boxed", "\\frac{1}{2}"),
    ("work\nAnswer: 42.\nmore", "answer-line", "42"),
    ("result=17;", "regex:result=(\\d+)", "17"),
    ("think 3\nANSWER: 8\nWINNER: 2", "auto", "8"),
    ("\\boxed{12} and 5", "auto", "12"),
    ("nothing numeric here\nParis", "auto", "paris"),
    ("no number", "last-number", None),
    ("8.0", "last-number", "8"),
])
def test_extract_answer(text, fmt, want):
    assert extract_answer(text, fmt) == want


def test_bad_answer_format_names_allowed_values():
    with pytest.raises(ConfigError, match="last-number"):
        check_format("lastnumber")
    with pytest.raises(ConfigError, match="bad regular expression"):
        check_format("regex:(")


def test_is_correct_normalizes():
    assert is_correct("7.", "7") and is_correct(" 1,000 ", "1000") and not is_correct("8", "7")
    assert is_correct(None, "7") is False and is_correct("7", None) is None
    assert normalize("  Paris. ") == "paris"


async def test_samples_have_distinct_indices_and_seeds():
    be = ScriptedBackend(["a"])
    ctx = RunContext(be, defaults=SamplingDefaults(seed=100, temperature=0.9, max_tokens=7))
    await ctx.sample([{"role": "user", "content": "q"}], 4, role="draft")
    assert [r.sample_index for r in be.requests] == [0, 1, 2, 3]
    assert [r.seed for r in be.requests] == [100, 101, 102, 103]
    assert {(r.temperature, r.max_tokens) for r in be.requests} == {(0.9, 7)}
    assert [rec.role for rec in ctx.records] == ["draft"] * 4


async def test_child_contexts_share_the_trace_and_separate_replicas():
    be = ScriptedBackend(["a"])
    root = RunContext(be, path="rtv")
    kid = root.child("pdr", replica=2).child("draft", replica=1)
    await kid.complete([{"role": "user", "content": "q"}], role="draft")
    assert be.requests[0].replica == "2.1"
    assert root.records[0].path == "rtv/pdr/draft" and kid.records == root.records
    assert root.rng("x").random() == RunContext(be, path="rtv").rng("x").random()
    assert root.rng("x").random() != root.rng("y").random()


async def test_seeded_replicas_send_distinct_requests():
    be = ScriptedBackend(["a"])
    root = RunContext(be, defaults=SamplingDefaults(seed=5))
    for rep in range(3):
        await root.child("gen", replica=rep).sample([{"role": "user", "content": "q"}], 2, role="draft")
    seeds = [r.seed for r in be.requests]
    assert len(set(seeds)) == 6
    assert RunContext(be, defaults=SamplingDefaults(seed=5)).request([{"role": "user", "content": "q"}],
                                                                      sample_index=1).seed == 6


async def test_self_consistency_votes_and_reports_usage():
    be = ScriptedBackend(["3 + 4 = 7", "ANSWER: 8", "I think 7", "7!", "9"])
    res = await tts.SelfConsistency(n=5).run(Task(id="t", prompt="3 + 4?", answer="7"), be)
    assert res.answer == "7" and res.correct is True
    assert res.metadata["votes"] == {"7": 3.0, "8": 1.0, "9": 1.0}
    assert len(be.requests) == 5 and res.usage.calls == 5 and len(res.trace) == 5
    assert res.chosen[0].answer == "7"


async def test_self_consistency_tie_is_broken_by_seed_reproducibly():
    async def winner(seed):
        be = ScriptedBackend(["1", "2"])
        res = await tts.SelfConsistency(n=2).run(Task(id="t", prompt="q"), be, seed=seed)
        return res.answer

    first = [await winner(s) for s in range(12)]
    assert first == [await winner(s) for s in range(12)]
    assert set(first) == {"1", "2"}


async def test_one_instance_serves_many_tasks_concurrently():
    def reply(req):
        q = req.messages[-1].content
        return f"ANSWER: {q.upper()}"

    be = ScriptedBackend(reply, latency=0.01)
    strategy = tts.SelfConsistency(n=3)
    tasks = [Task(id=str(i), prompt=f"w{i}") for i in range(20)]
    together = await tts.run_many(strategy, tasks, be)
    alone = [await strategy.run(t, be) for t in tasks]
    assert [r.answer for r in together] == [r.answer for r in alone] == [f"w{i}" for i in range(20)]


async def test_budget_exceeded_keeps_what_was_completed():
    calls = {"n": 0}

    class CapAfterTwo(ScriptedBackend):
        async def complete(self, request):
            calls["n"] += 1
            if calls["n"] > 2:
                raise BudgetExceeded("max_calls=2 reached", usage=Usage(calls=2))
            return await super().complete(request)

    be = CapAfterTwo(["ANSWER: 5"])
    ctx_strategy = tts.SelfConsistency(n=4)
    res = await ctx_strategy.run(Task(id="t", prompt="q", answer="5"), be)
    assert res.status == "budget_exceeded" and "max_calls" in res.error
    assert len(res.candidates) == 2 and {c.answer for c in res.candidates} == {"5"}
    assert res.usage.calls == 2


async def test_backend_failure_becomes_an_error_result_not_a_crash():
    be = ScriptedBackend([ServerError("boom", status=500)])
    res = await tts.SingleSample().run("hello", be)
    assert res.status == "error" and "ServerError" in res.error
    assert res.trace[0].error and res.usage.calls == 0


def test_run_sync_refuses_inside_a_loop():
    async def inner():
        coro = asyncio.sleep(0)
        try:
            tts.run_sync(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError, match="await"):
        asyncio.run(inner())


async def test_scripted_backend_dict_and_completion_replies():
    be = ScriptedBackend({"capital": Completion(text="Paris", usage=Usage(calls=1, completion_tokens=1))})
    res = await tts.SingleSample().run("the capital of France?", be)
    assert res.answer == "paris" and be.calls == 1

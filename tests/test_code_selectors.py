"""P(True), RPC, B4, the tests verifier and the test generator, on the scripted backend and
hand-made inputs whose right answers are worked out in the comments."""

import math

import pytest

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Completion, Task, TokenLogprob
from tts.run import run_task
from tts.selectors import (
    B4,
    RPC,
    PTrue,
    TestGenerator,
    TestsVerifier,
    b4_rank,
    component_from_spec,
    max_pass_rank,
    p_true_from_logprobs,
    parse_tests,
    parse_verdict,
    path_probability,
    prune_mask,
    rpc_weights,
)
from tts.spec import strategy_from_spec
from tts.testing import ScriptedBackend, request_text

TASK = Task(id="t", prompt="What is 6 * 7?", answer="42")


def ctx_for(backend, seed=0):
    return RunContext(backend, seed=seed)


# -- P(True) ---------------------------------------------------------------------------------------

def verdict_completion(p_a: float) -> Completion:
    """A reply "(A" whose second token carries top logprobs A: p_a, B: 1 - p_a - 0.02, and noise."""
    top = [{"token": "A", "logprob": math.log(p_a)}, {"token": "B", "logprob": math.log(1 - p_a - 0.02)},
           {"token": "C", "logprob": math.log(0.02)}]
    return Completion(text="(A", logprobs=[TokenLogprob(token="(", logprob=-0.01, top_logprobs=[]),
                                           TokenLogprob(token="A", logprob=math.log(p_a), top_logprobs=top)])


def test_p_true_from_logprobs_normalizes_over_a_and_b():
    assert p_true_from_logprobs(verdict_completion(0.6).logprobs) == pytest.approx(0.6 / 0.98)
    assert p_true_from_logprobs([TokenLogprob(token=" B", logprob=math.log(0.7))]) == pytest.approx(0.3)
    assert p_true_from_logprobs([TokenLogprob(token="Hmm", logprob=-1.0)]) is None
    assert parse_verdict("The proposed answer is: (B) False") is False
    assert parse_verdict("A") is True and parse_verdict("true, I think") is True and parse_verdict("no idea") is None


async def test_p_true_with_logprobs_scores_by_the_probability_of_true():
    def reply(req):
        return verdict_completion(0.9 if "Proposed Answer: ANSWER: 42" in request_text(req) else 0.2)

    be = ScriptedBackend(reply)
    cands = [Candidate(id="a", text="ANSWER: 41", answer="41"), Candidate(id="b", text="ANSWER: 42", answer="42")]
    scorer = PTrue(show="text")
    annotated = await scorer.annotate(TASK, cands, ctx_for(be))
    assert [c.metadata["p_true_method"] for c in annotated] == ["logprobs", "logprobs"]
    assert [c.score for c in annotated] == pytest.approx([0.2 / 0.98, 0.9 / 0.98])
    assert be.calls == 2  # one verdict call per candidate
    req = be.requests[0]
    assert req.logprobs is True and req.top_logprobs == 20 and req.temperature == 0.0
    assert "(A) True" in request_text(req) and "(B) False" in request_text(req)
    chosen = await scorer.select(TASK, cands, ctx_for(be))
    assert chosen[0].answer == "42" and chosen[0].metadata["p_true"] == pytest.approx(0.9 / 0.98)


async def test_p_true_without_logprobs_falls_back_to_sampled_verdicts():
    def reply(req):
        if "Proposed Answer: ANSWER: 42" in request_text(req):
            return "(B) False" if req.sample_index % 4 == 0 else "(A) True"  # indices 1..8: 4 and 8 say False
        return "(B)"

    be = ScriptedBackend(reply)
    cands = [Candidate(id="a", text="ANSWER: 42", answer="42"), Candidate(id="b", text="ANSWER: 41", answer="41")]
    annotated = await PTrue(samples=8, show="text").annotate(TASK, cands, ctx_for(be))
    assert [c.metadata["p_true_method"] for c in annotated] == ["sampled", "sampled"]
    assert [c.score for c in annotated] == pytest.approx([6 / 8, 0.0])
    # one logprobs probe (for the first candidate only), then 8 sampled verdicts per candidate
    assert be.calls == 1 + 8 + 8
    assert sum(bool(r.logprobs) for r in be.requests) == 1
    assert {r.temperature for r in be.requests if not r.logprobs} == {1.0}
    with pytest.raises(ConfigError, match="no logprobs"):
        await PTrue(method="logprobs").annotate(TASK, cands, ctx_for(ScriptedBackend(["(A)"])))


async def test_p_true_shows_other_samples_first_when_asked():
    be = ScriptedBackend([verdict_completion(0.5)])
    cands = [Candidate(id=str(i), text=f"ANSWER: {a}", answer=a) for i, a in enumerate(["41", "42", "43"])]
    await PTrue(show_samples=2, show="text").annotate(TASK, cands, ctx_for(be))
    first = request_text(be.requests[0])
    assert "brainstormed answers" in first and "- 42" in first and "- 43" in first and "- 41" not in first


async def test_p_true_as_best_of_n_scorer_records_the_method_in_the_result():
    def reply(req):
        text = request_text(req)
        if "Proposed Answer" in text:
            return verdict_completion(0.95 if "ANSWER: 42" in text.split("Proposed Answer")[1] else 0.1)
        return "ANSWER: 42" if req.sample_index == 2 else f"ANSWER: {40 + req.sample_index}"

    strategy = strategy_from_spec({"kind": "best-of-n", "n": 4, "scorer": {"kind": "p-true", "show": "text"}})
    res = await run_task(strategy, TASK, ScriptedBackend(reply))
    assert res.answer == "42" and res.correct
    assert res.best.metadata["p_true_method"] == "logprobs"


# -- RPC -------------------------------------------------------------------------------------------

def path(answer, prob, i, tokens=10):
    """A candidate whose mean token logprob is log(prob)."""
    return Candidate(id=f"c{i}", text=f"path {i}: ANSWER: {answer}", answer=answer,
                     metadata={"seq_logprob": tokens * math.log(prob), "seq_tokens": tokens})


def test_path_probability_is_exp_mean_logprob_or_exp_sum():
    c = Candidate(id="c", text="x", metadata={"seq_logprob": -2.0, "seq_tokens": 4})
    assert path_probability(c) == pytest.approx(math.exp(-0.5))
    assert path_probability(c, length_normalized=False) == pytest.approx(math.exp(-2.0))
    raw = Candidate(id="r", text="x", metadata={"logprobs": [{"token": "a", "logprob": -1.0}, {"token": "b",
                                                                                               "logprob": -3.0}]})
    assert path_probability(raw) == pytest.approx(math.exp(-2.0))
    assert path_probability(Candidate(id="n", text="x")) is None


async def test_rpc_weights_answers_by_summed_path_probability_not_by_count():
    # majority says 7 (three votes); perplexity consistency says 8: 0.9 + 0.85 > 0.05 + 0.06 + 0.04
    cands = [path("7", 0.05, 0), path("7", 0.06, 1), path("7", 0.04, 2), path("8", 0.9, 3), path("8", 0.85, 4)]
    chosen = await RPC(prune=False).select(TASK, cands, ctx_for(ScriptedBackend(["x"])), k=2)
    assert [c.answer for c in chosen] == ["8", "7"]
    assert chosen[0].id == "c3"  # the heaviest path represents its answer
    assert chosen[0].metadata["rpc"]["answer_weight"] == pytest.approx(1.75 / 1.90)
    weights, _ = rpc_weights(cands, [0.05, 0.06, 0.04, 0.9, 0.85], prune=False)
    assert weights == pytest.approx([0.05, 0.06, 0.04, 0.9, 0.85])


def test_rpc_counts_an_identical_completion_once():
    a, b = path("7", 0.5, 0), path("7", 0.5, 0).model_copy(update={"id": "dup"})
    weights, keep = rpc_weights([a, b], [0.5, 0.5], prune=False)
    assert weights == [0.5, 0.0] and keep == [True, True]


async def test_rpc_pruning_drops_the_low_probability_cluster_and_changes_the_winner():
    # twenty low-probability paths (about 0.1 each, sum 2.0) say 7; two high ones (0.9 + 0.6) say 8.
    low = [path("7", 0.08 + 0.002 * i, i) for i in range(20)]
    high = [path("8", 0.9, 20), path("8", 0.6, 21)]
    cands = low + high
    probs = [path_probability(c) for c in cands]
    keep = prune_mask(probs)
    assert keep[20:] == [True, True] and not any(keep[:20])  # all low paths fall in the low cluster, below the mean
    ctx = ctx_for(ScriptedBackend(["x"]))
    assert (await RPC(prune=False).select(TASK, cands, ctx))[0].answer == "7"
    pruned = await RPC().select(TASK, cands, ctx)
    assert pruned[0].answer == "8"
    assert pruned[0].metadata["rpc"]["kept"] is True


def test_rpc_never_prunes_a_path_at_or_above_the_mean():
    import random

    rng = random.Random(7)
    for _ in range(30):
        probs = [rng.uniform(0.01, 1.0) ** rng.choice([1, 3]) for _ in range(rng.randint(4, 16))]
        keep = prune_mask(probs)
        mean = sum(probs) / len(probs)
        assert all(k for p, k in zip(probs, keep, strict=True) if p >= mean)
        assert keep[probs.index(max(probs))]
    assert prune_mask([0.9, 0.1]) == [True, True]  # too few paths to fit a mixture
    assert prune_mask([0.3] * 6) == [True] * 6  # all equal: nothing to separate


async def test_rpc_without_logprobs_is_a_clear_error():
    with pytest.raises(ConfigError, match="rpc needs the logprobs"):
        await RPC().select(TASK, [Candidate(id="a", text="ANSWER: 1", answer="1")], ctx_for(ScriptedBackend(["x"])))


async def test_rpc_end_to_end_reads_the_generators_logprobs():
    def reply(req):  # samples 0-2 say 7 with low confidence, 3 says 8 confidently
        sure = req.sample_index == 3
        lp = math.log(0.95 if sure else 0.2)
        return Completion(text=f"ANSWER: {8 if sure else 7}",
                          logprobs=[TokenLogprob(token="t", logprob=lp) for _ in range(5)])

    strategy = strategy_from_spec({"kind": "best-of-n", "n": 4, "selector": "rpc"})
    res = await run_task(strategy, TASK, ScriptedBackend(reply))
    # 0.95 > 3 * 0.2: perplexity consistency picks 8 where majority would pick 7
    assert res.answer == "8"
    assert res.candidates[0].metadata["seq_tokens"] == 5


# -- B4 ----------------------------------------------------------------------------------------------

# Solutions s0-s2 are correct: they pass the three correct tests t0-t2 and fail the three wrong
# ones t3-t5. The wrong solution s3 passes t0 and the three wrong tests: 4 passes beat 3, so
# "most tests passed" picks s3. B4 sees that three solutions agree exactly on (t0, t1, t2) while
# s3 stands alone, and that the (s3, wrong-test) block would have to be almost all passes.
MATRIX = [
    [1, 1, 1, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 0, 0, 1, 1, 1],
]


def test_b4_and_most_tests_passed_disagree_and_b4_is_right():
    assert max_pass_rank(MATRIX)[0][0] == [3]
    ranked = b4_rank(MATRIX)
    assert ranked[0][0] == [0, 1, 2]
    assert ranked[0][1] > ranked[1][1]
    # the margin is large: about 35 nats at the default priors
    assert ranked[0][1] - ranked[1][1] > 20


CODE_TASK = Task(id="double", prompt="Write double(x) returning 2 * x.",
                 metadata={"entry_point": "double", "tests": ["assert double(5) == 10", "assert double(-1) == -2"]})
SOLUTIONS = ["```python\ndef double(x):\n    return x * 2\n```", "```python\ndef double(x):\n    return x + x\n```",
             "```python\ndef double(x):\n    return 2 * x\n```", "```python\ndef double(x):\n    return x\n```"]
# the model-written tests: three right, three wrong (they expect the identity) -- MATRIX exactly
WRITTEN = ("```python\nassert double(0) == 0\nassert double(1) == 2\nassert double(2) == 4\n"
           "assert double(1) == 1\nassert double(2) == 2\nassert double(3) == 3\nprint('done')\n```")


def code_cands():
    return [Candidate(id=f"s{i}", text=t) for i, t in enumerate(SOLUTIONS)]


async def test_b4_selector_runs_the_code_and_picks_the_consistent_set():
    be = ScriptedBackend([WRITTEN])
    ctx = ctx_for(be)
    chosen = await B4().select(CODE_TASK, code_cands(), ctx, k=4)
    assert chosen[0].id in {"s0", "s1", "s2"} and chosen[-1].id == "s3"
    assert chosen[0].metadata["b4"]["generated_tests"] == 6 and chosen[0].metadata["b4"]["task_tests"] == 0
    assert chosen[0].metadata["tests_run"]["passed"] == 3
    assert be.calls == 1 and "double" in request_text(be.requests[0])
    # most-tests-passed on the same generated tests picks the wrong one
    maxpass = await TestsVerifier(tests="generated").select(CODE_TASK, code_cands(),
                                                            ctx_for(ScriptedBackend([WRITTEN])))
    assert maxpass[0].id == "s3"


async def test_b4_with_task_tests_only_is_most_tests_passed():
    chosen = await B4(tests="task").select(CODE_TASK, code_cands()[::-1], ctx_for(ScriptedBackend(["unused"])), k=4)
    assert chosen[-1].id == "s3" and all(c.metadata["tests_run"]["passed"] == 2 for c in chosen[:3])
    assert chosen[0].metadata["b4"]["log_posterior"] is None


async def test_b4_with_both_ranks_by_trusted_tests_first():
    be = ScriptedBackend(["```python\nassert double(1) == 1\nassert double(2) == 2\n```"])  # only wrong tests
    chosen = await B4(tests="both").select(CODE_TASK, code_cands(), ctx_for(be), k=4)
    assert chosen[-1].id == "s3"  # fails the task's tests, whatever the written ones say


# -- tests verifier and test generator --------------------------------------------------------------

def test_parse_tests_keeps_distinct_one_line_asserts_on_the_entry_point():
    text = ("```python\nassert f(1) == 2\nassert f(1) == 2\nassert True\nassert f(2 ==\nx = 3\n"
            "assert candidate(3) == 6\n```")
    assert parse_tests(text, "f") == ["assert f(1) == 2", "assert candidate(3) == 6"]
    assert parse_tests("assert g(1)", None) == ["assert g(1)"]


async def test_test_generator_merges_samples_and_caps():
    be = ScriptedBackend(["assert f(1) == 1\nassert f(2) == 2", "assert f(2) == 2\nassert f(3) == 3"])
    tests = await TestGenerator(samples=2, max_tests=3).write_tests(
        Task(id="x", prompt="f", metadata={"entry_point": "f", "tests": []}), ctx_for(be))
    assert tests == ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]
    assert sorted(r.sample_index for r in be.requests) == [0, 1]


async def test_tests_verifier_in_best_of_n_records_every_test_and_grades_the_run():
    replies = ["```python\ndef double(x):\n    return x\n```", "```python\ndef double(x):\n    while True: pass\n```",
               "```python\ndef double(x):\n    return 2 * x\n```", "no code at all"]
    be = ScriptedBackend(lambda req: replies[req.sample_index])
    strategy = strategy_from_spec({"kind": "best-of-n", "n": 4, "scorer": {"kind": "tests", "timeout_s": 1}})
    res = await run_task(strategy, CODE_TASK, be)
    assert res.best.text == replies[2] and res.best.score == 1.0
    assert res.correct is True  # graded by the task's own tests (reusing the verifier's record)
    runs = {c.text: c.metadata["tests_run"] for c in res.candidates}
    assert [o["status"] for o in runs[replies[0]]["outcomes"]] == ["failed", "failed"]
    assert [o["status"] for o in runs[replies[1]]["outcomes"]] == ["timeout", "timeout"]
    assert runs[replies[3]]["outcomes"][0]["status"] == "error"
    assert runs[replies[2]]["source"] == "task" and "process group" in runs[replies[2]]["sandbox"]


async def test_a_code_task_without_a_passing_answer_is_graded_incorrect():
    res = await run_task(strategy_from_spec({"kind": "single"}), CODE_TASK,
                         ScriptedBackend(["```python\ndef double(x):\n    return x\n```"]))
    assert res.correct is False


async def test_tests_verifier_without_tests_is_a_clear_error():
    with pytest.raises(ConfigError, match="has no tests"):
        await TestsVerifier().score(TASK, [Candidate(id="a", text="x")])


def test_components_are_reachable_by_kind():
    for kind, cls in [("p-true", PTrue), ("rpc", RPC), ("b4", B4), ("tests", TestsVerifier),
                      ("test-generator", TestGenerator)]:
        assert isinstance(component_from_spec(kind), cls)
    spec = {"kind": "b4", "tests": "both", "beta_0": 1e5, "generator": {"kind": "test-generator", "samples": 2}}
    assert component_from_spec(spec).generator.samples == 2
    with pytest.raises(ConfigError, match="unknown field"):
        component_from_spec({"kind": "rpc", "prunee": True})


async def test_no_parseable_written_tests_is_a_noted_random_pick_not_a_crash():
    be = ScriptedBackend(["I cannot write tests."])
    chosen = await B4().select(CODE_TASK, code_cands(), ctx_for(be), k=4)
    assert sorted(c.id for c in chosen) == ["s0", "s1", "s2", "s3"]
    assert all("no test that parses" in c.metadata["tests_note"] for c in chosen)
    scored = await TestsVerifier(tests="generated").annotate(CODE_TASK, code_cands(), ctx_for(be))
    assert [c.score for c in scored] == [0.0] * 4 and "tests_note" in scored[0].metadata


@pytest.mark.parametrize("name", ["code_best_of_n_written_tests.yaml", "code_b4.yaml"])
async def test_example_code_specs_load_and_pick_a_passing_solution(name):
    from pathlib import Path

    from tts.spec import load_spec

    strategy = load_spec(Path(__file__).resolve().parents[1] / "examples" / "specs" / name)

    def reply(req):
        if "test cases" in request_text(req):
            return "```python\nassert double(1) == 2\nassert double(4) == 8\n```"
        return SOLUTIONS[3] if req.sample_index % 2 else SOLUTIONS[0]

    res = await run_task(strategy, CODE_TASK, ScriptedBackend(reply))
    assert res.status == "ok" and res.correct is True and res.best.text == SOLUTIONS[0]

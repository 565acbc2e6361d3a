"""Selectors on the scripted backend: RTV's exact call counts, shuffling, ties and bad votes; votes;
judges; verifiers; pessimistic verification; self-certainty."""

import hashlib
import math
import random
import re

import pytest

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Task, TokenLogprob
from tts.seam import ChatRequest
from tts.selectors import (
    RTV,
    ConfidenceVote,
    ListwiseJudge,
    MajorityVote,
    PessimisticVerification,
    PointwiseJudge,
    SelfCertainty,
    Verifier,
    WeightedVote,
    borda_weights,
    check_expression,
    component_from_spec,
    parse_score,
    parse_winner,
    pessimistic_scores,
    safe_eval,
    self_certainty,
)
from tts.selectors.verifier import CheckError
from tts.testing import ScriptedBackend, request_text

TASK = Task(id="t", prompt="What is 6 * 7?", answer="42")


def cands(answers):
    return [Candidate(id=f"c{i}", text=f"Attempt c{i}: I worked it out.\nAnswer: {a}",
                      answer=None if a is None else str(a))
            for i, a in enumerate(answers)]


def shown_ids(request: ChatRequest) -> list[str]:
    """The candidate ids in the order a listwise prompt shows them."""
    blocks = re.split(r"## Candidate \d+", request_text(request))[1:]
    return [re.search(r"Attempt (c\d+)", b).group(1) for b in blocks]


def judge_calls(be):
    return [r for r in be.requests if "WINNER" in request_text(r)]


# -- RTV: exact call counts ---------------------------------------------------------------------

async def test_rtv_16_candidates_makes_120_judge_calls_in_4_rounds():
    be = ScriptedBackend(["WINNER: 1"])
    ctx = RunContext(be, seed=1)
    t = await RTV(group_size=2, votes=8).tournament(TASK, cands(range(16)), ctx, k=1)
    assert be.calls == 120 and t.judge_calls == 120
    assert len(t.rounds) == 4 and [len(r.groups) for r in t.rounds] == [8, 4, 2, 1]
    assert len(t.winners) == 1
    assert {rec.role for rec in ctx.records} == {"judge"}
    # the trace shows the tree: 15 groups, each with sample indices 0..7
    paths = {}
    for rec in ctx.records:
        paths.setdefault(rec.path, []).append(rec.sample_index)
    assert len(paths) == 15 and all(sorted(v) == list(range(8)) for v in paths.values())
    assert "rtv/r1/g8" in paths and "rtv/r4/g1" in paths


async def test_rtv_five_candidates_gives_byes_and_v_times_n_minus_1_calls():
    be = ScriptedBackend(["WINNER: 2"])
    t = await RTV(votes=3).tournament(TASK, cands(range(5)), RunContext(be), k=1)
    assert be.calls == 3 * 4
    byes = [[g.decided_by == "bye" for g in r.groups] for r in t.rounds]
    assert byes == [[False, False, True], [False, True], [False]]
    assert [g.votes for g in t.rounds[0].groups if g.decided_by == "bye"] == [[]]


@pytest.mark.parametrize("n,k,contests,rounds", [(16, 4, 12, 2), (16, 3, 13, 3), (16, 8, 8, 1), (5, 2, 3, 2),
                                                 (3, 5, 0, 0)])
async def test_rtv_select_k_returns_exactly_k(n, k, contests, rounds):
    be = ScriptedBackend(["WINNER: 1"])
    t = await RTV(votes=8).tournament(TASK, cands(range(n)), RunContext(be), k=k)
    assert be.calls == 8 * contests and len(t.rounds) == rounds
    assert len(t.winners) == min(k, n) and len({c.id for c in t.winners}) == min(k, n)


async def test_rtv_group_of_three():
    be = ScriptedBackend(["WINNER: 3"])
    t = await RTV(group_size=3, votes=2).tournament(TASK, cands(range(9)), RunContext(be), k=1)
    assert [len(r.groups) for r in t.rounds] == [3, 1] and be.calls == 2 * 4
    # 4 left with k=3: one group of 3 would remove 2, so it shrinks to a pair and byes
    be2 = ScriptedBackend(["WINNER: 1"])
    t2 = await RTV(group_size=3, votes=2).tournament(TASK, cands(range(4)), RunContext(be2), k=3)
    assert len(t2.winners) == 3 and be2.calls == 2
    assert sorted(len(g.members) for g in t2.rounds[0].groups) == [1, 1, 2]


# -- RTV: quality, shuffling, ties, bad votes ----------------------------------------------------

def noisy_judge(correct_id: str, p: float, salt: object = ""):
    """Names the candidate `correct_id` with probability p when it is shown, else another one;
    a fixed function of the request (and `salt`: runs with different salts draw independently),
    so runs are reproducible."""

    def reply(req: ChatRequest) -> str:
        ids = shown_ids(req)
        key = f"{salt}|{request_text(req)}|{req.sample_index}|{req.replica}".encode()
        r = random.Random(hashlib.sha256(key).digest())
        if correct_id in ids and r.random() < p:
            return f"Reasoning...\nWINNER: {ids.index(correct_id) + 1}"
        others = [i for i, c in enumerate(ids) if c != correct_id]
        return f"WINNER: {r.choice(others) + 1}"

    return reply


async def test_rtv_picks_the_right_candidate_when_the_judge_is_right_70_percent():
    answers = ["42"] + [str(40 + i) for i in range(7)]  # c0 is the right one of 8
    wins = 0
    for seed in range(100):  # independent judge draws per seed, so no one prompt wording decides
        be = ScriptedBackend(noisy_judge("c0", 0.7, salt=seed))
        chosen = await RTV(votes=8).select(TASK, cands(answers), RunContext(be, seed=seed))
        wins += chosen[0].id == "c0"
    # per contest: P(>=5 of 8) + P(4-4)/2 = 0.874; three rounds ~0.67 (sd 4.7 in 100); random choice 1/8
    assert wins >= 50, wins


async def test_rtv_single_vote_judge_is_right_more_than_random():
    wins = 0
    for seed in range(30):
        be = ScriptedBackend(noisy_judge("c3", 0.7, salt=seed))
        chosen = await RTV(votes=1).select(TASK, cands(range(4)), RunContext(be, seed=seed))
        wins += chosen[0].id == "c3"
    assert wins >= 10, wins  # 0.49 expected, random 0.25


async def test_rtv_same_seed_same_prompts_and_winner_different_seed_different_shuffles():
    async def run(seed):
        be = ScriptedBackend(noisy_judge("c5", 0.6))
        t = await RTV(votes=4).tournament(TASK, cands(range(8)), RunContext(be, seed=seed))
        prompts = sorted((r.replica, r.sample_index, request_text(r)) for r in be.requests)
        return t, prompts, [shown_ids(r) for r in be.requests]

    t1, p1, _ = await run(7)
    t2, p2, _ = await run(7)
    t3, p3, _ = await run(8)
    assert p1 == p2 and t1 == t2
    assert p1 != p3
    assert t1.rounds[0].groups != t3.rounds[0].groups  # the round's pairing is reshuffled


async def test_rtv_shuffles_positions_per_vote():
    be = ScriptedBackend(["WINNER: 1"])  # a purely position-biased judge
    t = await RTV(votes=8).tournament(TASK, cands(range(16)), RunContext(be, seed=3))
    for r in t.rounds:
        for g in r.groups:
            firsts = {v for v in g.votes}
            assert firsts <= set(g.members)
    # the pair is shown in both orders within a group's 8 votes, in most groups
    mixed = sum(len(set(g.votes)) == 2 for r in t.rounds for g in r.groups)
    assert mixed >= 12, mixed
    orders = {}
    for req in be.requests:
        orders.setdefault(frozenset(shown_ids(req)), set()).add(tuple(shown_ids(req)))
    assert sum(len(v) == 2 for v in orders.values()) == mixed


async def test_rtv_discards_unparseable_votes():
    def reply(req):
        ids = shown_ids(req)
        if req.sample_index < 6:
            return "I cannot decide."
        return f"WINNER: {ids.index('c1') + 1}" if "c1" in ids else "WINNER: 1"

    be = ScriptedBackend(reply)
    t = await RTV(votes=8).tournament(TASK, cands(range(2)), RunContext(be), k=1)
    (g,) = t.rounds[0].groups
    assert g.votes == [None] * 6 + ["c1", "c1"] and g.decided_by == "majority" and t.winners[0].id == "c1"
    assert be.calls == 8


async def test_rtv_no_valid_votes_decided_by_seeded_rng():
    winners = set()
    for seed in range(12):
        be = ScriptedBackend(["no idea", "WINNER: 9"])  # unparseable, then out of range
        t = await RTV(votes=4).tournament(TASK, cands(range(2)), RunContext(be, seed=seed))
        again = await RTV(votes=4).tournament(TASK, cands(range(2)), RunContext(ScriptedBackend(["x"]), seed=seed))
        assert t.rounds[0].groups[0].decided_by == "no-valid-votes-rng"
        assert t.winners[0].id == again.winners[0].id
        winners.add(t.winners[0].id)
    assert winners == {"c0", "c1"}


async def test_rtv_tie_broken_by_seeded_rng():
    def reply(req):
        ids = shown_ids(req)
        target = "c0" if req.sample_index < 2 else "c1"
        return f"WINNER: {ids.index(target) + 1}"

    winners = set()
    for seed in range(12):
        t = await RTV(votes=4).tournament(TASK, cands(range(2)), RunContext(ScriptedBackend(reply), seed=seed))
        t2 = await RTV(votes=4).tournament(TASK, cands(range(2)), RunContext(ScriptedBackend(reply), seed=seed))
        assert t.rounds[0].groups[0].decided_by == "tie-rng" and t.winners[0].id == t2.winners[0].id
        winners.add(t.winners[0].id)
    assert winners == {"c0", "c1"}


async def test_rtv_uses_the_judge_backend_and_summaries():
    default, judge = ScriptedBackend(["never"]), ScriptedBackend(["WINNER: 1"])
    ctx = RunContext(backends={"default": default, "judge": judge})
    out = await RTV(votes=2).select(TASK, cands(["1", "2"]), ctx)
    assert default.calls == 0 and judge.calls == 2
    assert out[0].summary is not None and out[0].summary.final_answer in {"1", "2"}
    assert "Final answer: " in request_text(judge.requests[0])


def test_rtv_from_spec_and_bad_field():
    r = component_from_spec({"kind": "rtv", "votes": 4, "judge": {"use": "judge2", "temperature": 0.5}})
    assert isinstance(r, RTV) and r.votes == 4 and r.judge.use == "judge2"
    with pytest.raises(ConfigError, match="field 'vote'"):
        component_from_spec({"kind": "rtv", "vote": 4})
    with pytest.raises(ConfigError, match=r"allowed: .*majority"):
        component_from_spec("best")
    assert isinstance(component_from_spec("majority"), MajorityVote)


# -- votes ------------------------------------------------------------------------------------

async def test_majority_vote_and_seeded_ties():
    ctx = RunContext(ScriptedBackend(["x"]))
    out = await MajorityVote().select(TASK, cands(["3", "4", "4", None]), ctx, k=3)
    assert [c.id for c in out] == ["c1", "c0", "c2"]
    winners = set()
    for seed in range(16):
        a = await MajorityVote().select(TASK, cands(["3", "4"]), RunContext(ScriptedBackend(["x"]), seed=seed))
        b = await MajorityVote().select(TASK, cands(["3", "4"]), RunContext(ScriptedBackend(["x"]), seed=seed))
        assert a == b
        winners.add(a[0].answer)
    assert winners == {"3", "4"}


async def test_weighted_vote_by_score_by_key_and_by_scorer():
    cs = cands(["3", "4", "4"])
    cs[0] = cs[0].model_copy(update={"score": 5.0, "metadata": {"w": 0.1}})
    cs[1] = cs[1].model_copy(update={"score": 1.0, "metadata": {"w": 1.0}})
    cs[2] = cs[2].model_copy(update={"score": 1.0, "metadata": {"w": 1.0}})
    ctx = RunContext(ScriptedBackend(["x"]))
    assert (await WeightedVote().select(TASK, cs, ctx))[0].answer == "3"
    assert (await WeightedVote(weight_key="w").select(TASK, cs, ctx))[0].answer == "4"
    task = Task(id="t", prompt="q", answer="3")
    assert (await WeightedVote(scorer=Verifier()).select(task, cands(["3", "4", "4"]), ctx))[0].answer == "3"
    spec = component_from_spec({"kind": "weighted-vote", "scorer": {"kind": "verifier", "check": "answer"}})
    assert isinstance(spec.scorer, Verifier)


# -- judges ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,k,want", [
    ("WINNER: 2", 2, 1), ("blah\nWinner: Candidate 3", 3, 2), ("**WINNER:** 1", 2, 0), ("Best: 2", 2, 1),
    ("The best candidate is 1.", 2, 0), ("Candidate 1 is wrong. Candidate 2 is right", 2, 1),
    ("2", 2, 1), ("WINNER: 3", 2, None), ("I cannot tell", 2, None), ("WINNER: [2]", 2, 1),
    ("Candidate 2 looks good.\nWINNER: 1", 2, 0),
])
def test_parse_winner(text, k, want):
    assert parse_winner(text, k) == want


@pytest.mark.parametrize("text,want", [
    ("SCORE: 7", 0.7), ("Grade: 7/10", 0.7), ("so 3/5 overall", 0.6), ("8", 0.8), ("Score: 11", None),
    ("no grade", None), ("SCORE: 2\n...\nSCORE: 9", 0.9),
])
def test_parse_score(text, want):
    got = parse_score(text, 10)
    assert got == pytest.approx(want) if want is not None else got is None


async def test_listwise_judge_one_call_and_unparseable_fallback():
    be = ScriptedBackend(lambda req: f"WINNER: {shown_ids(req).index('c2') + 1}")
    out = await ListwiseJudge().select(TASK, cands(range(4)), RunContext(be), k=2)
    assert be.calls == 1 and out[0].id == "c2" and len(out) == 2
    be2 = ScriptedBackend(["hmm"])
    out2 = await ListwiseJudge().select(TASK, cands(range(4)), RunContext(be2))
    assert "judge_note" in out2[0].metadata


async def test_pointwise_judge_scores_and_selects_with_m_samples():
    def reply(req):
        text = request_text(req)
        if "Final answer: 42" in text:
            return "SCORE: 9" if req.sample_index == 0 else "SCORE: 7"
        return "SCORE: 2" if req.sample_index == 0 else "unsure"

    be = ScriptedBackend(reply)
    judge = PointwiseJudge(samples=2, temperature=0.3)
    scores = await judge.score(TASK, cands(["41", "42"]), RunContext(be))
    assert be.calls == 4 and scores == pytest.approx([0.2, 0.8])
    assert {r.temperature for r in be.requests} == {0.3}
    best = await judge.select(TASK, cands(["41", "42"]), RunContext(be))
    assert best[0].id == "c1" and best[0].score == pytest.approx(0.8)


async def test_judge_prompt_override_by_text():
    be = ScriptedBackend(["WINNER: 1"])
    judge = ListwiseJudge(prompts={"judge_listwise": "Pick one of {{ candidates|length }} for: {{ task }}"})
    await judge.select(TASK, cands(range(2)), RunContext(be))
    assert request_text(be.requests[0]) == "Pick one of 2 for: What is 6 * 7?"


# -- verifier ----------------------------------------------------------------------------------

async def test_verifier_answer_as_scorer_filter_and_selector():
    v = Verifier()
    cs = cands(["41", "42.0", None])
    assert await v.score(TASK, cs) == [0.0, 1.0, 0.0]
    assert [c.id for c in await v.filter(TASK, cs)] == ["c1"]
    assert (await v.select(TASK, cs, RunContext(ScriptedBackend(["x"]))))[0].id == "c1"
    with pytest.raises(ConfigError, match="no expected answer"):
        await v.score(Task(id="u", prompt="q"), cs)
    assert await v.score(Task(id="u", prompt="q", metadata={"expected": "41"}), cs) == [1.0, 0.0, 0.0]


async def test_verifier_check_expression_from_task_metadata():
    task = Task(id="t", prompt="an even number above 10", metadata={"check": "answer > 10 and answer % 2 == 0"})
    assert await Verifier(check="check").score(task, cands(["12", "11", "8", "ten"])) == [1.0, 0.0, 0.0, 0.0]
    bad = Task(id="b", prompt="q", metadata={"check": "__import__('os').system('echo hi')"})
    with pytest.raises(ConfigError, match="bad check expression"):
        await Verifier(check="check").score(bad, cands(["1"]))


@pytest.mark.parametrize("expr", ["answer.__class__", "open('x')", "[x for x in (1,)]", "lambda: 1", "2 ** 1000",
                                  "'a' * 10", "nope + 1"])
def test_safe_eval_rejects(expr):
    with pytest.raises(CheckError):
        safe_eval(expr, {"answer": 3})


def test_check_expression_values():
    assert check_expression("answer == 42", "42.0") and check_expression("text == 'paris'", "Paris.")
    with pytest.raises(CheckError):
        check_expression("abs(answer) == 1", "1")
    assert check_expression("1 / answer > 0", "0") is False  # division by zero fails the check
    assert check_expression("answer in (1, 2, 3)", "2") and not check_expression("answer < 5", None)


async def test_verifier_from_callable_and_module(tmp_path, monkeypatch):
    async def close_to_42(task, c):
        return 1.0 - min(1.0, abs(float(c.answer) - 42) / 10)

    v = Verifier.from_callable(close_to_42, threshold=0.85)
    assert await v.score(TASK, cands(["42", "40", "30"])) == pytest.approx([1.0, 0.8, 0.0])
    assert [c.id for c in await v.filter(TASK, cands(["42", "40", "30"]))] == ["c0"]
    (tmp_path / "myverify.py").write_text("def ok(task, c):\n    return c.answer == '7'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    v2 = Verifier.from_spec("myverify:ok")
    assert await v2.score(TASK, cands(["7", "8"])) == [1.0, 0.0]
    with pytest.raises(ConfigError, match="no function 'missing'"):
        await Verifier.from_spec("myverify:missing").score(TASK, cands(["7"]))
    with pytest.raises(ConfigError, match="use answer, check, or module:function"):
        Verifier.from_spec("exact")


# -- pessimistic verification ---------------------------------------------------------------------

def test_pessimistic_formula_by_hand():
    verdicts = {"5": [[0.6, 0.4], [0.6, 0.4]], "7": [[1.0, 1.0]]}
    s = pessimistic_scores(verdicts, n=3, m=2, alpha=1.0)
    # ln(6) = 1.791759; "5": 0.5 - sqrt(1.791759/5) = 0.5 - 0.598625; "7": 1 - sqrt(1.791759/3) = 1 - 0.772821
    assert s["5"] == pytest.approx(-0.098625, abs=1e-6) and s["7"] == pytest.approx(0.227179, abs=1e-6)
    s3 = pessimistic_scores(verdicts, n=3, m=2, alpha=3.0)
    assert s3["5"] == pytest.approx(0.5 - 3 * 0.598625, abs=1e-5) and s3["5"] > s3["7"]
    assert pessimistic_scores({"a": [[None, None]]}, 1, 2, 0.0) == {"a": 0.0}


async def test_pessimistic_selector_end_to_end():
    def reply(req):
        text = request_text(req)
        if "Final answer: 7" in text:
            return "SCORE: 10"
        return "SCORE: 6" if req.sample_index == 0 else "SCORE: 4"

    cs = cands(["5", "5", "7"])
    low = await PessimisticVerification(judge=PointwiseJudge(samples=2), alpha=1.0).select(
        TASK, cs, RunContext(be := ScriptedBackend(reply)))
    assert be.calls == 6 and low[0].answer == "7" and low[0].score == pytest.approx(0.227179, abs=1e-6)
    high = await PessimisticVerification(judge=PointwiseJudge(samples=2), alpha=3.0).select(
        TASK, cs, RunContext(ScriptedBackend(reply)))
    assert high[0].answer == "5"


# -- self-certainty -----------------------------------------------------------------------------

def tok(*probs):
    return TokenLogprob(token="x", logprob=math.log(probs[0]),
                        top_logprobs=[{"token": str(i), "logprob": math.log(p)} for i, p in enumerate(probs)])


def test_self_certainty_on_synthetic_logprobs():
    assert self_certainty([tok(0.5, 0.5)]) == pytest.approx(0.0)
    sharp = -math.log(3) - (math.log(0.9) + 2 * math.log(0.05)) / 3
    assert self_certainty([tok(0.9, 0.05, 0.05)]) == pytest.approx(sharp)
    assert self_certainty([tok(0.5, 0.5), tok(0.9, 0.05, 0.05)]) == pytest.approx(sharp / 2)
    assert self_certainty([tok(0.99, 0.01)]) > self_certainty([tok(0.6, 0.4)])
    assert self_certainty([TokenLogprob(token="x", logprob=-0.1)]) is None and self_certainty(None) is None
    assert self_certainty([{"token": "x", "logprob": -0.1, "top_logprobs": [{"logprob": -0.1}, {"logprob": -3}]}]) \
        == pytest.approx(-math.log(2) + 1.55)


def test_borda_weights():
    assert borda_weights([0.1, 0.3, 0.2]) == pytest.approx([1.0, math.sqrt(3), math.sqrt(2)])
    assert borda_weights([0.1, 0.3], p=1.0) == [1.0, 2.0]


async def test_confidence_vote_lets_a_confident_minority_win():
    cs = cands(["x", "x", "y", "y", "y"])
    cs = [c.model_copy(update={"metadata": {"self_certainty": sc}}) for c, sc in zip(cs, [5, 4, 3, 2, 1], strict=True)]
    ctx = RunContext(ScriptedBackend(["unused"]))
    # x: sqrt5 + sqrt4 = 4.236 > y: sqrt3 + sqrt2 + 1 = 4.146
    assert (await ConfidenceVote().select(TASK, cs, ctx))[0].answer == "x"
    assert (await MajorityVote().select(TASK, cs, ctx))[0].answer == "y"
    assert (await SelfCertainty().select(TASK, cs, ctx))[0].id == "c0"


async def test_no_logprobs_is_a_clear_skip_or_a_noted_fallback():
    ctx = RunContext(ScriptedBackend(["unused"]))
    with pytest.raises(ConfigError, match="returned no logprobs"):
        await SelfCertainty().score(TASK, cands(["1", "2"]), ctx)
    with pytest.raises(ConfigError, match="another selector"):
        await ConfidenceVote().select(TASK, cands(["1", "2"]), ctx)
    out = await ConfidenceVote(fallback="majority").select(TASK, cands(["1", "2", "2"]), ctx)
    assert out[0].answer == "2" and "no logprobs" in out[0].metadata["selector_note"]


async def test_rtv_tie_broken_by_one_extra_vote_when_asked():
    def reply(req):
        ids = shown_ids(req)
        if req.sample_index == 4:  # the extra vote
            return f"WINNER: {ids.index('c1') + 1}"
        return f"WINNER: {ids.index('c0' if req.sample_index < 2 else 'c1') + 1}"

    for seed in range(6):
        be = ScriptedBackend(reply)
        t = await RTV(votes=4, tie_break="extra-vote").tournament(TASK, cands(range(2)), RunContext(be, seed=seed))
        g = t.rounds[0].groups[0]
        assert be.calls == 5 and g.decided_by == "tie-extra-vote" and t.winners[0].id == "c1"
        assert g.votes == ["c0", "c0", "c1", "c1", "c1"] and t.judge_calls == 5

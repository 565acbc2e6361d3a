"""Best-of-N, sequential refinement, PDR and RTV as strategies, on the scripted backend:
exact call counts, PDR's kappa bound and budgets, nesting, and concurrent use of one instance."""

import asyncio
import hashlib
import itertools
import re
from collections import Counter

import pytest

from tts.errors import ConfigError
from tts.records import Task
from tts.run import run_many, run_task
from tts.selectors.judge import ListwiseJudge
from tts.selectors.tournament import RTV
from tts.selectors.verifier import Verifier
from tts.strategies import (
    BestOfN,
    ParallelDistillRefine,
    SelfConsistency,
    SequentialRefinement,
    SingleSample,
    TournamentVoting,
)
from tts.strategies.workspace import approx_tokens
from tts.testing import ScriptedBackend, request_text

TASK = Task(id="t", prompt="What is 2 + 3?", answer="5")


def judge_for(right: str):
    """A judge that names the candidate whose final answer is `right` (else candidate 1)."""

    def reply(text: str) -> str:
        finals = re.findall(r"## Candidate (\d+)\s*\nFinal answer: (\S+)", text)
        for i, ans in finals:
            if ans == right:
                return f"WINNER: {i}"
        return "WINNER: 1"

    return reply


def model(answers, *, judge=None, distill="Agreed: the sum is 5.", critique="Looks wrong."):
    """A fake model: drafts answer answers[sample_index % len], judges via `judge`, distills with `distill`."""

    def fn(req):
        text = request_text(req)
        if "WINNER: <number" in text:
            return (judge or (lambda t: "WINNER: 1"))(text)
        if "Write a compact summary" in text:
            return distill
        if "Review this attempt" in text:
            return critique
        return f"Working.\nAnswer: {answers[req.sample_index % len(answers)]}"

    return ScriptedBackend(fn)


def roles(res):
    return Counter(r.role for r in res.trace)


# -- best-of-n ----------------------------------------------------------------------------------
async def test_best_of_n_with_verifier_scorer_picks_the_passing_candidate():
    be = model(["3", "7", "5", "9"])
    res = await run_task(BestOfN(n=4, scorer=Verifier(check="answer")), TASK, be)
    assert be.calls == 4 and res.answer == "5" and res.correct
    assert res.metadata["scores"] == [0.0, 0.0, 1.0, 0.0]


async def test_best_of_n_with_listwise_judge_makes_one_judge_call():
    be = model(["3", "5", "7"], judge=judge_for("5"))
    res = await run_task(BestOfN(n=3, selector=ListwiseJudge()), TASK, be)
    assert roles(res) == {"sample": 3, "judge": 1} and res.answer == "5"


def test_best_of_n_rejects_two_pickers():
    with pytest.raises(ConfigError, match="either 'scorer' or 'selector'"):
        BestOfN(scorer=Verifier(), selector=ListwiseJudge())


# -- sequential refinement ------------------------------------------------------------------------
async def test_sequential_refinement_makes_one_call_per_round_and_shows_the_previous_attempt():
    be = model(["4"])
    res = await run_task(SequentialRefinement(rounds=3), TASK, be)
    assert be.calls == 3 and roles(res) == {"draft": 1, "refine": 2}
    assert "Answer: 4" in request_text(be.requests[1]) and "What is 2 + 3?" in request_text(be.requests[1])
    assert [c.id for c in res.candidates] == ["r1", "r2", "r3"]
    assert res.metadata["B_seq"] == res.metadata["B_total"] == res.usage.total_tokens


async def test_sequential_refinement_critique_goes_to_the_judge_backend():
    be, jb = model(["4"]), model(["x"], critique="Step 2 is wrong: 2 + 3 is not 4.")
    res = await run_task(SequentialRefinement(rounds=3, critique=True), TASK, be, backends={"judge": jb})
    assert be.calls == 3 and jb.calls == 2
    assert roles(res) == {"draft": 1, "refine": 2, "feedback": 2}
    assert "Step 2 is wrong" in request_text(be.requests[1])


async def test_sequential_refinement_stops_when_the_verifier_passes():
    be = model(["5"])
    res = await run_task(SequentialRefinement(rounds=4, scorer=Verifier(), stop_at=1.0), TASK, be)
    assert be.calls == 1 and res.answer == "5" and res.best.score == 1.0


def sure_of(confidence: dict[str, float], *, logprobs: bool = True):
    """Attempts answer 4, 5, 4, 5, ... by call; each reply's tokens get the mean logprob
    `confidence[answer]` (as two tokens), or no logprobs at all."""
    from tts.records import Completion, TokenLogprob, Usage

    answers = itertools.cycle(["4", "5"])

    def fn(req):
        answer = next(answers)
        lp = confidence[answer]
        tokens = [TokenLogprob(token="Answer:", logprob=lp - 0.5), TokenLogprob(token=answer, logprob=lp + 0.5)]
        return Completion(text=f"Answer: {answer}", finish_reason="stop", usage=Usage.of(20, 2, 1),
                          logprobs=tokens if logprobs else None)

    return ScriptedBackend(fn)


async def test_sequential_refinement_likelier_keeps_the_answer_the_model_was_surer_of():
    be = sure_of({"4": -0.1, "5": -2.0})  # the refinements to 5 are less likely than the draft's 4
    res = await run_task(SequentialRefinement(rounds=3, accept="likelier"), TASK, be)
    assert be.calls == 3 and roles(res) == {"draft": 1, "refine": 2}  # the papers' calls, whatever stands
    assert all(r.logprobs and r.top_logprobs for r in be.requests)  # llama.cpp needs both to return any
    assert res.answer == "4" and res.best.id == "r1" and res.metadata["accepted_round"] == 1
    assert "Answer: 4" in request_text(be.requests[2])  # round 3 refines the attempt that stands, not r2
    assert [c.answer for c in res.candidates] == ["4", "5", "4"]
    assert res.metadata["B_seq"] == res.metadata["B_total"] == res.usage.total_tokens
    assert "accept_note" not in res.metadata


async def test_sequential_refinement_likelier_takes_a_surer_refinement_and_is_last_without_logprobs():
    res = await run_task(SequentialRefinement(rounds=2, accept="likelier"), TASK, sure_of({"4": -2.0, "5": -0.1}))
    assert res.answer == "5" and res.metadata["accepted_round"] == 2
    # no logprobs: nothing to tell the attempts apart, so the refinement is accepted and the result says so
    res = await run_task(SequentialRefinement(rounds=2, accept="likelier"), TASK,
                         sure_of({"4": -0.1, "5": -2.0}, logprobs=False))
    assert res.answer == "5" and "no logprobs" in res.metadata["accept_note"]
    # the papers' rule: the last refinement, and no logprobs asked for
    be = sure_of({"4": -0.1, "5": -2.0})
    res = await run_task(SequentialRefinement(rounds=2), TASK, be)
    assert res.answer == "5" and not any(r.logprobs for r in be.requests) and "accepted_round" not in res.metadata


async def test_sequential_refinement_likelier_with_a_verifier_scores_the_standing_attempt_once():
    be = sure_of({"4": -0.1, "5": -2.0})
    res = await run_task(SequentialRefinement(rounds=3, accept="likelier", scorer=Verifier(check="answer")), TASK, be)
    assert be.calls == 3 and res.answer == "4" and res.best.score == 0.0
    assert [c.score for c in res.candidates] == [0.0, None, None]  # r1 stood throughout: scored once


def test_sequential_refinement_likelier_partial_pick_is_the_standing_attempt():
    from tts.records import Candidate

    def attempt(r, answer, lp):
        return Candidate(id=f"r{r}", text=f"Answer: {answer}", answer=answer,
                         metadata={"round": r, "seq_logprob": 2 * lp, "seq_tokens": 2})

    got = [attempt(2, "5", -2.0), attempt(1, "4", -0.1), attempt(3, "6", -0.05)]
    assert SequentialRefinement(rounds=4, accept="likelier").pick_partial(got[:2], None)[0].id == "r1"
    assert SequentialRefinement(rounds=4, accept="likelier").pick_partial(got, None)[0].id == "r3"
    assert SequentialRefinement(rounds=4).pick_partial(got[:2], None)[0].id == "r2"


# -- PDR ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,calls,by_role", [
    (dict(drafts=[4, 2, 1]), 9, {"draft": 7, "distill": 2}),
    (dict(drafts=3, rounds=3), 9, {"draft": 7, "distill": 2}),
    (dict(drafts=5, rounds=1), 1, {"draft": 1}),
    (dict(drafts=[4, 2, 1], distill="top-k"), 7, {"draft": 7}),
    (dict(drafts=[4, 3, 1], distill="random-k", k=2), 8, {"draft": 8}),
    (dict(drafts=[4, 1], distill="top-k", k=2, selector=RTV(group_size=2, votes=3)), 11, {"draft": 5, "judge": 6}),
])
async def test_pdr_call_counts(spec, calls, by_role):
    be = model(["5", "4"], judge=judge_for("5"))
    res = await run_task(ParallelDistillRefine(**spec), TASK, be)
    assert be.calls == calls and roles(res) == by_role
    assert len(res.chosen) == 1 and res.chosen[0].id.endswith("d0")


def test_pdr_schedule_and_bad_schedules():
    assert ParallelDistillRefine(drafts=8, rounds=3).schedule == [8, 8, 1]
    assert ParallelDistillRefine(drafts=[8, 4, 1]).schedule == [8, 4, 1]
    with pytest.raises(ConfigError, match="end the list with 1"):
        ParallelDistillRefine(drafts=[8, 4])
    with pytest.raises(ConfigError, match="does not match"):
        ParallelDistillRefine(drafts=[8, 4, 1], rounds=2)
    with pytest.raises(ConfigError, match="'top-k' only"):
        ParallelDistillRefine(distill="summary", selector=RTV())


@pytest.mark.parametrize("distill", ["summary", "top-k", "random-k"])
async def test_pdr_workspace_never_exceeds_kappa(distill):
    long = "x " * 3000
    be = ScriptedBackend(lambda req: long + "\nAnswer: 5")
    kappa = 40
    # the draft prompt is overridden (by text) to the workspace alone, so the whole message is measured
    strat = ParallelDistillRefine(drafts=[3, 3, 1], distill=distill, k=2, kappa=kappa,
                                  prompts={"pdr_draft.j2": "{{ workspace }}"})
    res = await run_task(strat, TASK, be)
    later = [r for r in be.requests if "What is 2 + 3?" not in request_text(r)]
    assert len(later) == 4  # 3 + 1 drafts conditioned on a workspace
    for r in later:
        assert 0 < approx_tokens(request_text(r)) <= kappa
    assert max(res.metadata["workspace_tokens"]) <= kappa
    if distill == "summary":
        assert [r.max_tokens for r in be.requests if "compact summary" in request_text(r)] == [kappa, kappa]


async def test_pdr_budgets_add_up():
    be = model(["5", "44", "333"], distill="Summary: most say 5.")
    res = await run_task(ParallelDistillRefine(drafts=[3, 2, 1]), TASK, be)
    tok = [(r.path, r.role, r.usage.total_tokens) for r in res.trace]
    total = sum(t for *_, t in tok)
    assert res.metadata["B_total"] == total == res.usage.total_tokens

    def pick(path, role):
        return [t for p, rl, t in tok if p.endswith(path) and rl == role]

    # the accepted path: final draft <- distill 2 <- the longest round-2 draft <- distill 1 <- longest round-1 draft
    want = (pick("round3", "draft")[0] + pick("round2", "distill")[0] + max(pick("round2", "draft"))
            + pick("round1", "distill")[0] + max(pick("round1", "draft")))
    assert res.metadata["B_seq"] == want
    assert res.metadata["B_seq"] < res.metadata["B_total"]


@pytest.mark.parametrize("show", ["full", "auto"])
async def test_pdr_random_k_gives_each_draft_its_own_workspace(show):
    be = ScriptedBackend(lambda req: f"Draft body {req.sample_index}\nAnswer: {req.sample_index}")
    strat = ParallelDistillRefine(drafts=[6, 4, 1], distill="random-k", k=2, show=show,
                                  prompts={"pdr_draft.j2": "{{ workspace }}"})
    await run_task(strat, TASK, be)
    round2 = [request_text(r) for r in be.requests[6:10]]
    assert len(set(round2)) > 1  # bootstrapped per draft
    if show == "full":
        assert all(t.count("Earlier attempt") == 2 for t in round2)
    else:  # short answers: each workspace (after the earlier turn) counts support among its own k drafts
        told = [r.messages[-1].content for r in be.requests[6:10]]
        assert all(t.count("(1 of 2 attempts)") == 2 for t in told)
        be = ScriptedBackend(lambda req: f"Draft body {req.sample_index}\nAnswer: {req.sample_index}")
        await run_task(strat.model_copy(update={"short_as": "note", "prompts": {}}), TASK, be)
        notes = [r.messages[0].content for r in be.requests[6:10]]  # the same as a system note
        assert all(t.count("(1 of 2 attempts)") == 2 for t in notes)


# -- RTV ----------------------------------------------------------------------------------------
async def test_rtv_defaults_make_16_samples_and_120_judge_calls():
    answers = ["4"] * 15 + ["5"]
    be = model(answers, judge=judge_for("5"))
    res = await run_task(TournamentVoting(n=16, group_size=2, votes=8), TASK, be)
    assert roles(res) == {"sample": 16, "judge": 120} and be.calls == 136
    assert res.metadata["tournament"]["rounds"] == 4
    assert res.answer == "5" and res.correct


async def test_rtv_select_k_returns_k_survivors():
    be = model([str(i) for i in range(8)])
    res = await run_task(TournamentVoting(n=8, votes=1, select_k=2), TASK, be)
    assert len(res.chosen) == 2 and roles(res)["judge"] == 6


# -- nesting ------------------------------------------------------------------------------------
async def test_rtv_over_pdr_runs_end_to_end():
    be = model(["4", "5"], judge=judge_for("5"))
    strat = TournamentVoting(n=4, votes=2, generator=ParallelDistillRefine(drafts=[2, 1]))
    res = await run_task(strat, TASK, be)
    # 4 PDR runs x (2 drafts + 1 distill + 1 final draft) + 3 matches x 2 votes
    assert roles(res) == {"draft": 12, "distill": 4, "judge": 6}
    first_drafts = [(r.replica, r.sample_index) for r in be.requests if request_text(r) == "What is 2 + 3?"]
    assert len(first_drafts) == 8 and len(set(first_drafts)) == 8  # replicas keep samples distinct
    assert {rep for rep, _ in first_drafts} == {"0", "1", "2", "3"}
    assert len(res.candidates) == 4 and all(c.usage.total_tokens > 0 for c in res.candidates)
    assert {r.path for r in res.trace if r.role == "draft"} == {"rtv/pdr/round1", "rtv/pdr/round2"}


async def test_pdr_whose_top_k_is_rtv_select_k_from_a_spec_dict():
    strat = ParallelDistillRefine.model_validate(
        {"kind": "pdr", "drafts": [4, 1], "distill": "top-k", "k": 2, "selector": {"kind": "rtv", "votes": 1}})
    be = model(["5", "4"])
    res = await run_task(strat, TASK, be)
    assert isinstance(strat.selector, RTV) and roles(res) == {"draft": 5, "judge": 2}


async def test_self_consistency_over_best_of_n():
    be = model(["5", "3"])
    strat = SelfConsistency(n=3, generator=BestOfN(n=2, scorer=Verifier()))
    res = await run_task(strat, TASK, be)
    assert be.calls == 6 and res.answer == "5"
    assert len({(r.replica, r.sample_index) for r in be.requests}) == 6


# -- one instance, many tasks ---------------------------------------------------------------------
def _deterministic(req):
    text = request_text(req)
    if "WINNER: <number" in text:
        return f"WINNER: {1 + int(hashlib.sha256((text + str(req.sample_index)).encode()).hexdigest(), 16) % 2}"
    h = int(hashlib.sha256(f"{text}|{req.sample_index}|{req.replica}".encode()).hexdigest(), 16)
    return f"Thinking {h % 97}.\nAnswer: {h % 5}"


@pytest.mark.parametrize("strat", [
    ParallelDistillRefine(drafts=[3, 2, 1], distill="random-k"),
    TournamentVoting(n=4, votes=3, generator=ParallelDistillRefine(drafts=[2, 1], distill="top-k", k=1)),
    SequentialRefinement(rounds=2),
])
async def test_one_instance_runs_many_tasks_concurrently_like_sequentially(strat):
    tasks = [Task(id=f"t{i}", prompt=f"What is {i} + {i}?") for i in range(5)]
    together = await run_many(strat, tasks, ScriptedBackend(_deterministic, latency=0.001))
    alone = [await run_task(strat, t, ScriptedBackend(_deterministic)) for t in tasks]

    def digest(res):
        return (res.answer, [c.text for c in res.chosen], [c.text for c in res.candidates],
                res.usage.calls, res.metadata.get("B_seq"))

    assert [digest(r) for r in together] == [digest(r) for r in alone]
    assert len({r.task_id for r in together}) == 5


def test_strategy_instances_are_frozen():
    strat = ParallelDistillRefine()
    with pytest.raises(Exception, match="frozen"):
        strat.kappa = 5  # type: ignore[misc]
    assert asyncio.iscoroutinefunction(SingleSample().solve)


def noisy_model(answers):
    """Samples answer answers[i % len]; a judge names the right candidate ('5') on 3 of 4 votes (a pure
    function of the candidates shown, their order and the vote index), else a wrong one."""

    def fn(req):
        text = request_text(req)
        if "WINNER: <number" not in text:
            return f"Working.\nAnswer: {answers[req.sample_index % len(answers)]}"
        finals = re.findall(r"## Candidate (\d+)\s*\nFinal answer: (\S+)", text)
        right = [i for i, ans in finals if ans == "5"]
        wrong = [i for i, ans in finals if ans != "5"]
        # hashed on what the judge is shown (candidates in order), not the template's wording
        h = int(hashlib.sha256(f"{finals}|{req.sample_index}|{req.replica}".encode()).hexdigest(), 16)
        if right and (h % 4 or not wrong):
            return f"WINNER: {right[0]}"
        return f"WINNER: {(wrong or right)[h % len(wrong or right)]}"

    return ScriptedBackend(fn)


async def test_rtv_with_a_mostly_right_judge_picks_the_right_candidate_reproducibly():
    answers = ["4", "6", "5", "7"] * 4
    strat = TournamentVoting(n=16, votes=8)
    first = await run_task(strat, TASK, noisy_model(answers), seed=3)
    again = await run_task(strat, TASK, noisy_model(answers), seed=3)
    assert first.answer == "5" and first.metadata["tournament"] == again.metadata["tournament"]
    other = await run_task(strat, TASK, noisy_model(answers), seed=4)
    assert other.metadata["tournament"]["groups"] != first.metadata["tournament"]["groups"]  # shuffles follow the seed
    assert other.answer == "5"

"""Where strategies lose (generation or selection), on scripted runs whose right and wrong
candidates are known: every figure below is worked out by hand in the comments."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from tts.experiments.runner import compare
from tts.experiments.selection_metrics import selection_figures, task_line
from tts.records import Task
from tts.run import run_many
from tts.strategies import ParallelDistillRefine, SelfConsistency, SequentialRefinement, TournamentVoting
from tts.testing import ScriptedBackend


def reply(answer: int | str) -> str:
    return f"So the answer is {answer}.\nAnswer: {answer}"


def task_of(req) -> str:
    """The task's tag (alpha, beta, ...) from anywhere in the request."""
    text = " ".join(str(m.content) for m in req.messages)
    return re.search(r"\b(alpha|beta|gamma|delta)\b", text).group(1)


def tasks(*tags: str) -> list[Task]:
    return [Task(id=t, prompt=f"{t}: 3 + 4 = ?", answer="7") for t in tags]


# -- self-consistency n=3: oracle, selection ----------------------------------------------------------------
SAMPLES = {"alpha": [7, 7, 3], "beta": [3, 3, 7], "gamma": [3, 3, 1], "delta": [7, 7, 7]}


async def test_self_consistency_oracle_and_selection_by_hand():
    backend = ScriptedBackend(lambda req: reply(SAMPLES[task_of(req)][req.sample_index]))
    ts = tasks("alpha", "beta", "gamma", "delta")
    results = await run_many(SelfConsistency(n=3), ts, backend)
    fig = selection_figures([task_line(r, "7") for r in results])
    # majority: alpha 7 (right), beta 3 (wrong, a 7 was there), gamma 3 (no 7 at all), delta 7 (right)
    assert [r.correct for r in results] == [True, False, False, True]
    assert fig["oracle_right"] == 3 and fig["oracle_accuracy"] == 3 / 4  # alpha, beta, delta had a 7
    assert fig["selection_accuracy"] == 2 / 3  # right on alpha and delta of those three
    assert fig["generation_loss"] == 1 / 4 and fig["selection_loss"] == 3 / 4 - 2 / 4
    assert fig["judge_accuracy"] is None and fig["rounds"] == []


# -- RTV: judge accuracy per contest and per vote, by round ---------------------------------------------------
def judge_reply(req) -> str:
    """alpha: a judge that always picks a 3; beta: votes 0 and 1 pick the 7, vote 2 a 3."""
    text = req.messages[-1].content
    shown = re.findall(r"## Candidate (\d+)\nFinal answer: (\d+)", text)
    want_right = task_of(req) == "beta" and req.sample_index < 2
    pick = next((n for n, a in shown if (a == "7") == want_right), shown[0][0])
    return f"WINNER: {pick}"


def rtv_script(req) -> str:
    if "# Candidates" in req.messages[-1].content:
        return judge_reply(req)
    return reply([7, 3, 3, 3][req.sample_index])


async def test_rtv_judge_accuracy_by_hand():
    results = await run_many(TournamentVoting(n=4, votes=3), tasks("alpha", "beta"), ScriptedBackend(rtv_script))
    fig = selection_figures([task_line(r, "7") for r in results])
    # alpha: round 1, the 7 meets a 3 and loses 0 votes to 3 (the other contest is 3 vs 3: says nothing about
    # the judge); round 2 is 3 vs 3. beta: the 7 wins 2 of 3 votes in round 1 and again in round 2.
    assert [r.correct for r in results] == [False, True]
    assert fig["judge_contests"] == 3 and fig["judge_accuracy"] == 2 / 3
    assert fig["judge_votes"] == 9 and fig["judge_vote_accuracy"] == 4 / 9
    assert [(r["round"], r["contests"], r["right"], r["votes"], r["right_votes"]) for r in fig["judge_rounds"]] == [
        (1, 2, 1, 6, 2), (2, 1, 1, 3, 2)]
    assert fig["oracle_accuracy"] == 1.0 and fig["selection_accuracy"] == 1 / 2
    assert fig["judge_drawn"] == 0  # every vote named a candidate


def test_a_contest_with_no_valid_vote_is_counted_as_drawn():
    """By hand: two contests with one right side; the first had 2 valid votes (1 right) and went to the
    right side, the second had none and a seeded draw gave it to the wrong side."""
    line = {"task": "t", "correct": False,
            "candidates": [{"id": "a", "answer": "7", "right": True}, {"id": "b", "answer": "3", "right": False},
                           {"id": "c", "answer": "7", "right": True}, {"id": "d", "answer": "1", "right": False}],
            "tournament": {"groups": [[
                {"members": ["a", "b"], "votes": ["a", "b", None], "winner": "a", "decided_by": "tie-rng"},
                {"members": ["c", "d"], "votes": [None, None], "winner": "d", "decided_by": "no-valid-votes-rng"}]]}}
    fig = selection_figures([line])
    assert (fig["judge_contests"], fig["judge_accuracy"], fig["judge_votes"], fig["judge_vote_accuracy"],
            fig["judge_drawn"]) == (2, 1 / 2, 2, 1 / 2, 1)


# -- sequential refinement and PDR: accuracy by round, fixed and broke -----------------------------------------
ATTEMPTS = {"alpha": [7, 3, 7], "beta": [3, 7, 7]}


async def test_refinement_rounds_by_hand():
    seen: dict[str, int] = defaultdict(int)

    def script(req) -> str:  # the rounds of one task are sequential: count its calls
        tag = task_of(req)
        seen[tag] += 1
        return reply(ATTEMPTS[tag][seen[tag] - 1])

    results = await run_many(SequentialRefinement(rounds=3), tasks("alpha", "beta"), ScriptedBackend(script))
    fig = selection_figures([task_line(r, "7") for r in results])
    # round 1: alpha right; round 2: beta right (fixed beta, broke alpha); round 3: both (fixed alpha)
    assert [(r["round"], r["right"], r["tasks"], r["fixed"], r["broke"]) for r in fig["rounds"]] == [
        (1, 1, 2, 0, 0), (2, 1, 2, 1, 1), (3, 2, 2, 1, 0)]
    assert fig["oracle_accuracy"] == 1.0 and fig["selection_accuracy"] == 1.0


async def test_pdr_rounds_use_the_round_majority():
    def script(req) -> str:
        text = req.messages[-1].content
        if text.startswith("Write a compact summary"):
            return "The attempts say 3 (two of three) or 7."
        if len(req.messages) == 1 and text == "alpha: 3 + 4 = ?":
            return reply([7, 3, 3][req.sample_index])  # round 1: majority 3 (wrong), one 7
        return reply(7)  # round 2 reads the workspace and answers 7

    (res,) = await run_many(ParallelDistillRefine(drafts=[3, 1]), tasks("alpha"), ScriptedBackend(script))
    fig = selection_figures([task_line(res, "7")])
    assert [(r["round"], r["right"], r["fixed"], r["broke"]) for r in fig["rounds"]] == [(1, 0, 0, 0), (2, 1, 1, 0)]
    assert res.correct is True and fig["oracle_accuracy"] == 1.0


# -- in tts compare: summary.json rows, the table ------------------------------------------------------------------
async def test_compare_rows_carry_the_selection_figures(tmp_path):
    def script(req) -> str:
        if "# Candidates" in req.messages[-1].content:
            return judge_reply(req)
        return reply(SAMPLES[task_of(req)][req.sample_index % 3])

    grid = [{"kind": "single"}, {"kind": "self-consistency", "n": 3}, {"kind": "rtv", "n": 3, "votes": 3}]
    cmp = await compare(tasks("alpha", "beta", "gamma", "delta"), grid, ScriptedBackend(script), out=tmp_path,
                        bootstrap=0)
    single, sc, rtv = cmp.rows
    assert single["oracle_accuracy"] == 2 / 4  # sample 0: 7, 3, 3, 7
    assert single["selection_accuracy"] is None and single["judge_accuracy"] is None  # one candidate: no selection
    assert sc["oracle_accuracy"] == 3 / 4 and sc["selection_accuracy"] == pytest.approx(2 / 3)
    assert sc["judge_accuracy"] is None
    assert rtv["judge_accuracy"] is not None and rtv["oracle_accuracy"] == 3 / 4
    import json

    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert [r["oracle_accuracy"] for r in rows] == [0.5, 0.75, 0.75]
    assert rows[0]["selection_accuracy"] is None and "judge_accuracy" in rows[0]
    text = repr(cmp)
    assert "oracle" in text and "75.0%" in text
    html = (tmp_path / "index.html").read_text()
    assert "lost in generation" in html and "lost in selection" in html
    assert html.count('<details class="task"') == 3 * 4  # every (configuration, task), by tts view's renderer
    from tts.cli.main import main as cli_main

    assert cli_main(["view", str(tmp_path)]) == 0  # a compare out dir opens in tts view too
    page = (tmp_path / "report.html").read_text()
    assert page.count('<details class="task"') == 12 and page.count('data-judgewrong="0"') <= 12

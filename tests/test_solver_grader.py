"""Solver-grader loop: grade parsing, confirmation, feedback in the same conversation, the
context-free solver, and exact call counts per phase (all on the scripted backend)."""

from __future__ import annotations

from collections import Counter

import pytest

from tts.errors import ConfigError
from tts.records import Task
from tts.spec import strategy_from_spec
from tts.strategies.grading import GradeFormat, feedback_of, parse_grade
from tts.strategies.solver_grader import Attempt, SolverGrader, rank
from tts.testing import ScriptedBackend, request_text

PROBLEM = "PROBLEM-MARK-q7: show that every ZORBLE is even."


def roles(result) -> Counter:
    return Counter(r.role for r in result.trace)


def last_user(req) -> str:
    return next(m.content for m in reversed(req.messages) if m.role == "user")


def script(grades):
    """Solvers write "ATTEMPT-<n>"; graders reply with REPORT-MARK and the grade `grades(req, attempt)`."""
    count = {"n": 0}

    def reply(req):
        last = last_user(req)
        if "## Solution to grade" in last:
            attempt = last.split("## Solution to grade", 1)[1].split("Write your report", 1)[0].strip()
            g = grades(req, attempt)
            grade_line = g if isinstance(g, str) else f"Final Grade: {g}/7"
            return f"REPORT-MARK on {attempt}.\nAreas for improvement\n- FIX-{attempt}\n{grade_line}"
        count["n"] += 1
        return f"ATTEMPT-{count['n']}"

    return reply


# -- grade parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Final Grade: 7/7", 7.0),
    ("**Final Grade:** 5 / 7", 5.0),
    ("final grade: 3/7", 3.0),
    ("Summary...\nFINAL GRADE: 6/7\nThanks for reading.", 6.0),
    ("Final Grade: 2/7 at first; on reflection\nFinal Grade: 4/7", 4.0),  # the last one wins
    ("Final grade = 6 out of 7", 6.0),
    ("*Final Grade*: 1", 1.0),
    ("Final Grade: 0/7", 0.0),
])
def test_parse_grade_wellformed(text, expected):
    g = parse_grade(text)
    assert g is not None and g.value == expected and g.max_grade == 7.0


@pytest.mark.parametrize("text", [
    "", None, "The proof is fine. 7/7", "Grade: excellent", "Final Grade: 9/7", "Final Grade: 5/10",
    "Final Grade: -1/7", "Final Grade: 6/7\nFinal Grade: 8/7",  # the last match decides, and it is out of range
    "Final Grade: X/7",
])
def test_parse_grade_malformed_is_none(text):
    assert parse_grade(text) is None


def test_grade_format_configurable():
    fmt = GradeFormat(pattern=r"score\s*=\s*(?P<grade>\d+)\s*/\s*(?P<max>\d+)", max_grade=10)
    assert parse_grade("score=3/10 ... score = 8/10", fmt).value == 8
    assert parse_grade("score=8/7", fmt) is None
    assert parse_grade("Final Grade: 7/7", fmt) is None
    with pytest.raises(ConfigError, match="named group"):
        GradeFormat(pattern=r"grade (\d+)")
    with pytest.raises(ConfigError, match="bad regular expression"):
        GradeFormat(pattern=r"(?P<grade>\d+")


def test_feedback_of_keeps_the_improvement_section():
    report = "Summary: good.\n## Areas for improvement\n- step 3 unproven\nFinal Grade: 4/7"
    assert feedback_of(report) == "## Areas for improvement\n- step 3 unproven"
    assert feedback_of("Only prose. Final Grade: 2/7") == "Only prose."


# -- the loop ---------------------------------------------------------------------------------------
async def test_call_counts_below_threshold():
    backend = ScriptedBackend(script(lambda req, a: 3))
    sg = SolverGrader(solvers=3, rounds=2, confirmations=3)
    res = await sg.run(Task(id="t", prompt=PROBLEM), backend)
    # solver 0 is context-free: three fresh solves; solvers 1-2: one solve and two refines each
    assert roles(res) == {"solve": 5, "refine": 4, "grade": 9}
    assert backend.calls == 18 and res.usage.calls == 18
    assert len({r.fingerprint("ns") for r in backend.requests}) == 18  # no two calls would share a cache entry
    # nor the same sample index: with a seed set, each call gets its own seed
    assert len({(r.sample_index, last_user(r)) for r in backend.requests}) == 18
    assert len({r.sample_index for r in backend.requests if "## Solution to grade" not in last_user(r)}) == 9
    assert res.metadata["accepted"] is False
    assert res.metadata["phases"]["grade"]["calls"] == 9
    assert len(res.candidates) == 9
    # temperatures: solvers 0.6, graders 0.1
    temps = {("grade" if "## Solution to grade" in last_user(r) else "solve"): r.temperature for r in backend.requests}
    assert temps == {"grade": 0.1, "solve": 0.6}


async def test_feedback_goes_into_the_same_conversation_and_free_solver_stays_fresh():
    backend = ScriptedBackend(script(lambda req, a: 2))
    sg = SolverGrader(solvers=2, rounds=1, confirmations=3)
    await sg.run(Task(id="t", prompt=PROBLEM), backend)
    solver_reqs = [r for r in backend.requests if "## Solution to grade" not in last_user(r)]
    free = [r for r in solver_reqs if r.replica == "0"]
    fed = [r for r in solver_reqs if r.replica == "1"]
    assert len(free) == 2 and len(fed) == 2
    # the context-free solver: a one-message conversation each round, never a report
    assert all(len(r.messages) == 1 and "REPORT-MARK" not in request_text(r) for r in free)
    assert [r.sample_index for r in free] == [0, 1]
    # the fed solver: round 2 continues its own conversation with its grader's feedback
    first, second = fed
    assert len(first.messages) == 1 and len(second.messages) == 3
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    own_attempt = second.messages[1].content
    assert own_attempt.startswith("ATTEMPT-")
    assert f"FIX-{own_attempt}" in second.messages[2].content
    assert "2/7" in second.messages[2].content


async def test_every_grader_is_a_fresh_conversation():
    backend = ScriptedBackend(script(lambda req, a: 7))
    await SolverGrader(solvers=2, rounds=1, confirmations=3).run(Task(id="t", prompt=PROBLEM), backend)
    graders = [r for r in backend.requests if "## Solution to grade" in last_user(r)]
    assert len(graders) == 8
    assert all(len(r.messages) == 1 for r in graders)
    assert all(PROBLEM in r.messages[0].content for r in graders)


async def test_top_grade_confirmed_by_all_is_accepted_and_stops_the_solver():
    backend = ScriptedBackend(script(lambda req, a: 7))
    res = await SolverGrader(solvers=1, rounds=2, confirmations=3).run(Task(id="t", prompt=PROBLEM), backend)
    assert roles(res) == {"solve": 1, "grade": 1, "confirm": 3}
    assert res.metadata["accepted"] is True
    best = res.best
    assert best.metadata["confirmations"] == [7.0, 7.0, 7.0] and best.score == 7.0
    confirms = [r for r in res.trace if r.role == "confirm"]
    assert sorted(r.sample_index for r in confirms) == [1, 2, 3]  # distinct samples, not cache hits
    assert len({r.fingerprint("ns") for r in backend.requests}) == backend.calls == 5


async def test_top_grade_one_confirmer_rejects_is_not_accepted():
    def grades(req, attempt):
        return 2 if req.sample_index == 3 else 7  # the third confirming grader disagrees

    backend = ScriptedBackend(script(grades))
    res = await SolverGrader(solvers=1, rounds=0, confirmations=3).run(Task(id="t", prompt=PROBLEM), backend)
    assert roles(res) == {"solve": 1, "grade": 1, "confirm": 3}
    assert res.metadata["accepted"] is False
    assert res.best.metadata["grade"] == 7.0
    assert res.best.metadata["confirmations"] == [7.0, 7.0, 2.0]
    assert res.best.score == 2.0  # ranked by the lowest grade any grader gave


async def test_rejected_top_grade_feeds_the_dissent_back():
    def grades(req, attempt):
        if attempt == "ATTEMPT-1":
            return "Final Grade: ?/7" if req.sample_index == 2 else 7  # an unparseable confirmer = dissent
        return 7

    backend = ScriptedBackend(script(grades))
    res = await SolverGrader(solvers=1, rounds=1, confirmations=2, context_free=0).run(
        Task(id="t", prompt=PROBLEM), backend)
    assert roles(res) == {"solve": 1, "refine": 1, "grade": 2, "confirm": 4}
    first, second = res.metadata["attempts"]
    assert first["accepted"] is False and first["confirmations"] == [7.0, None]
    assert second["accepted"] is True
    assert res.best.id == second["id"] and res.best.text == "ATTEMPT-2"


async def test_malformed_grader_output_is_a_low_grade_not_a_crash():
    backend = ScriptedBackend(script(lambda req, a: "I refuse to grade."))
    res = await SolverGrader(solvers=2, rounds=1).run(Task(id="t", prompt=PROBLEM), backend)
    assert res.status == "ok"
    assert roles(res) == {"solve": 3, "refine": 1, "grade": 4}
    assert all(c.metadata["grade"] is None and c.score == -1.0 for c in res.candidates)


async def test_refine_prompt_can_be_overridden_per_instance():
    backend = ScriptedBackend(script(lambda req, a: 1))
    sg = SolverGrader(solvers=1, rounds=1, context_free=0,
                      prompts={"solver_refine.j2": "OVERRIDE {{ grade }} of {{ max_grade }}"})
    await sg.run(Task(id="t", prompt=PROBLEM), backend)
    assert backend.requests[-2].messages[-1].content == "OVERRIDE 1 of 7"


def test_rank_prefers_accepted_then_grade_then_fewer_conjectures_then_newer():
    a = Attempt(id="a", text="", phase="p", grade=7, confirmations=[7, 3], order=1)
    b = Attempt(id="b", text="", phase="p", grade=6, accepted=False, order=2)
    c = Attempt(id="c", text="", phase="p", grade=5, confirmations=[5, 5], accepted=True, order=3)
    d = Attempt(id="d", text="", phase="p", grade=6, open_conjectures=2, order=4)
    e = Attempt(id="e", text="", phase="p", grade=6, order=0)
    assert [x.id for x in rank([a, b, c, d, e])] == ["c", "b", "e", "d", "a"]


def test_spec_and_validation():
    sg = strategy_from_spec({"kind": "solver-grader", "solvers": 2, "confirmations": 1,
                             "grade_format": {"max_grade": 10}, "grade_threshold": 9})
    assert isinstance(sg, SolverGrader) and sg.grade_format.max_grade == 10
    with pytest.raises(ConfigError, match="solvrs"):
        strategy_from_spec({"kind": "solver-grader", "solvrs": 2})
    with pytest.raises(ConfigError, match="grade_threshold"):
        strategy_from_spec({"kind": "solver-grader", "grade_threshold": 8})


def test_cli_flags_reach_the_strategies():
    import argparse

    from tts.cli.strategy_flags import add_strategy_flags, build_strategy

    parser = argparse.ArgumentParser()
    add_strategy_flags(parser)
    sg = build_strategy(parser.parse_args(["--strategy", "solver-grader", "--solvers", "3", "--rounds", "1",
                                           "--confirmations", "2", "--grade-threshold", "6"]))
    assert (sg.kind, sg.solvers, sg.rounds, sg.confirmations, sg.grade_threshold) == ("solver-grader", 3, 1, 2, 6.0)
    ce = build_strategy(parser.parse_args(["--strategy", "conjecture-extraction", "--loops", "2",
                                           "--final-solvers", "4"]))
    assert (ce.kind, ce.loops, ce.final_solvers) == ("conjecture-extraction", 2, 4)
    with pytest.raises(ConfigError, match="--loops does not apply to --strategy solver-grader"):
        build_strategy(parser.parse_args(["--strategy", "solver-grader", "--loops", "2"]))

"""Failures are loud: a refused agent model fails fast in one line naming the model string (no retry
loop), a rollout that ended in an error shows in the summary table (one line per distinct error), a run
whose rollouts all failed exits non-zero, and no judge call is spent on a group of failed rollouts."""

from __future__ import annotations

import json
import time

import pytest

from tts.cli.main import main
from tts.records import Trajectory
from tts.swe.pipeline import AgenticPDR, swe_rtv
from tts.swe.runners import ScriptedRunner
from tts.swe.summarize import RuleTrajectorySummary
from tts.swe.toy import FIX_PATCH, make_toy_instance
from tts.testing import ScriptedBackend, loopback_in_thread


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def dataset(tmp_path):
    row = make_toy_instance(tmp_path / "repos", "toy__calc-1")
    path = tmp_path / "toy.jsonl"
    path.write_text(json.dumps(row.model_dump(exclude={"metadata"})) + "\n")
    return path




# -- no judge call on failed rollouts (no extra needed) ----------------------------------------------
def failing(errors):
    """Rollout k ends in errors[k] (None: it submits the fix)."""
    def agent(inst, prior, rid):
        err = errors[int(rid.rsplit("-", 1)[1]) % len(errors)]
        meta = {"error": err} if err else {}
        return Trajectory(id=rid, task_id=inst.instance_id, outcome="Timeout" if err else "Submitted",
                          patch=None if err else FIX_PATCH, metadata=meta)
    return ScriptedRunner(agent)


async def test_a_group_of_failed_rollouts_costs_no_judge_call(tmp_path):
    inst = make_toy_instance(tmp_path, "toy__calc-1")
    backend = ScriptedBackend(["WINNER: 1"])
    strat = AgenticPDR(rollouts=3, rounds=2, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=2))
    res = await strat.run_instance(inst, failing(["litellm.Timeout: boom", "litellm.Timeout: boom", "APIError: x"]),
                                   backend)
    assert backend.calls == 0 and res.judge_calls == 0 and res.patch is None
    assert res.error == "all 3 rollouts of round 0 failed" and res.failed_rollouts == 3 and res.rollouts == 3
    assert res.rollout_errors == {"litellm.Timeout: boom": 2, "APIError: x": 1}
    assert len(res.rounds) == 1  # no second round conditioned on nothing


async def test_failed_rollouts_leave_the_pool_and_one_survivor_needs_no_judge(tmp_path):
    inst = make_toy_instance(tmp_path, "toy__calc-1")
    backend = ScriptedBackend(["WINNER: 1"])
    strat = AgenticPDR(rollouts=3, rounds=1, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=2))
    res = await strat.run_instance(inst, failing(["InternalServerError: 503", None, "InternalServerError: 503"]),
                                   backend)
    assert backend.calls == 0 and res.patch == FIX_PATCH and res.chosen_id.endswith("round0-1")
    assert res.error is None and res.rollout_errors == {"InternalServerError: 503": 2}


def test_a_run_whose_rollouts_all_failed_exits_non_zero_and_shows_each_error_once(tmp_path, dataset, capsys):
    saved = []
    for j, err in enumerate(["litellm.Timeout: Connection timed out after 600.0 seconds.",
                             "litellm.Timeout: Connection timed out after 600.0 seconds.",
                             "litellm.InternalServerError: overloaded"]):
        p = tmp_path / f"f{j}.json"
        p.write_text(Trajectory(id=f"f{j}", task_id="toy__calc-1", outcome="Timeout",
                                metadata={"error": err}).model_dump_json())
        saved.append(p)
    with loopback_in_thread() as server:
        code, _, err = run_cli(["swe", "run", "--dataset", dataset, "--run-dir", tmp_path / "r", "--agent", "replay",
                                  "--replay", *saved, "--n", "3", "--rounds", "1", "--summarizer", "llm",
                                  "--model", "loop", "--backend", "openai", "--api-base", server.url,
                                  "--grader", "local", "--quiet"], capsys)
        assert server.stats["requests"] == 0  # no summary call on empty failed rollouts, no judge call
    assert code == 1, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert errors == ["error: toy__calc-1: all 3 rollouts of round 0 failed",
                      "error: toy__calc-1: 2x litellm.Timeout: Connection timed out after 600.0 seconds.",
                      "error: toy__calc-1: litellm.InternalServerError: overloaded"]
    assert "2x litellm.Timeout" in err.split("wall")[0]  # in the table too


# -- fail fast on a model the provider will never accept (mini-swe-agent) ---------------------------
def one_line(code, err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


def test_an_unknown_model_string_fails_before_any_rollout(tmp_path, dataset, capsys):
    pytest.importorskip("minisweagent")
    started = time.monotonic()
    code, _, err = run_cli(["swe", "run", "--dataset", dataset, "--run-dir", tmp_path / "r", "--model", "nonsense-xyz",
                            "--env", "local", "--grader", "local", "--n", "2", "--rounds", "1", "--quiet"], capsys)
    line = one_line(code, err)
    assert "'nonsense-xyz'" in line and "LLM Provider NOT provided" in line and "'local'" in line
    assert time.monotonic() - started < 30
    assert not list((tmp_path / "r").glob("rollouts/*/*.json"))


@pytest.mark.parametrize("fault,kind", [("401", "AuthenticationError"), ("400", "BadRequestError")])
def test_a_refused_request_stops_the_run_after_one_request(tmp_path, dataset, capsys, fault, kind):
    pytest.importorskip("minisweagent")
    with loopback_in_thread() as server:
        server.faults = [fault] * 50
        started = time.monotonic()
        code, _, err = run_cli(["swe", "run", "--dataset", dataset, "--run-dir", tmp_path / "r",
                                "--model", "openai/served-model", "--api-base", server.url, "--api-key", "k",
                                "--env", "local", "--grader", "local", "--n", "2", "--rounds", "1",
                                "--concurrency", "1", "--quiet"], capsys)
        requests = server.stats["requests"]
    line = one_line(code, err)
    assert "'openai/served-model' was refused" in line and kind in line
    assert requests == 1 and time.monotonic() - started < 60  # no retry loop, no second rollout

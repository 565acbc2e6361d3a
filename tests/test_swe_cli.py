"""`tts swe ...`: preds in swebench's format, the local grader's reports, import of mini-swe-agent
output, a whole run end to end against the loopback server, and the one-line errors for a missing
Docker daemon and a dataset that is not available offline."""

import json
import re
import time
from pathlib import Path

import pytest

from tts.cli.main import main
from tts.records import Trajectory
from tts.swe import docker_probe
from tts.swe.toy import FIX_PATCH, WRONG_PATCHES, make_toy_instance
from tts.testing import loopback_in_thread

FIX = Path(__file__).parent / "fixtures" / "swe"


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def dataset(tmp_path):
    """Two toy instances in a local JSONL, as a user would pass them with --dataset."""
    rows = [make_toy_instance(tmp_path / "repos", f"toy__calc-{i}") for i in (1, 2)]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r.model_dump(exclude={"metadata"})) + "\n" for r in rows))
    return path


@pytest.fixture
def no_docker(monkeypatch):
    monkeypatch.setattr(docker_probe, "docker_available", lambda: False)


# -- errors ----------------------------------------------------------------------------------------------
def test_swebench_harness_without_docker_is_one_line(tmp_path, capsys, no_docker):
    code, _, err = run_cli(["swe", "eval", "--run-dir", tmp_path / "r", "--grader", "swebench"], capsys)
    assert_one_line_error(code, err, "Docker daemon", "--grader local")


def test_env_docker_without_docker_is_one_line(tmp_path, dataset, capsys, no_docker):
    code, _, err = run_cli(["swe", "rollout", "--dataset", dataset, "--run-dir", tmp_path / "r", "--env", "docker",
                            "--model", "openai/x"], capsys)
    assert_one_line_error(code, err, "Docker daemon", "--env local")
    # `run` stops before any rollout when its grader would need Docker
    code, _, err = run_cli(["swe", "run", "--dataset", dataset, "--run-dir", tmp_path / "r2", "--model", "openai/x",
                            "--grader", "swebench"], capsys)
    assert_one_line_error(code, err, "--grader local")
    assert not (tmp_path / "r2" / "rollouts").exists()


def test_docker_probe_answers_quickly():
    docker_probe.docker_available.cache_clear()
    started = time.perf_counter()
    assert docker_probe.docker_available() in (True, False)
    assert time.perf_counter() - started < 5


def test_hub_dataset_offline_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    code, _, err = run_cli(["swe", "rollout", "--dataset", "SWE-bench/SWE-bench_Verified", "--run-dir", tmp_path,
                            "--model", "openai/x"], capsys)
    assert_one_line_error(code, err, "'SWE-bench/SWE-bench_Verified' is not available offline", "local JSONL")
    assert time.perf_counter() - started < 5


def test_bad_dataset_row_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instance_id": "a", "problem_statement": "x"}\n{"instance_id": "b"}\n')
    code, _, err = run_cli(["swe", "rollout", "--dataset", bad, "--run-dir", tmp_path / "r", "--model", "m"], capsys)
    assert_one_line_error(code, err, "bad.jsonl:2", "problem_statement")


# -- preds, import, local grader ---------------------------------------------------------------------------
def test_import_then_preds_accepted_by_swebench(tmp_path, capsys):
    get_predictions_from_file = pytest.importorskip("swebench.harness.utils").get_predictions_from_file

    rd = tmp_path / "run"
    code, out, _ = run_cli(["swe", "import", FIX / "mswea_batch", "--run-dir", rd], capsys)
    assert code == 0 and "imported 2 rollouts of 2 instances" in out
    t = Trajectory.model_validate_json((rd / "rollouts" / "toy__calc-1" / "round0-0.json").read_text())
    assert t.id == "toy__calc-1/round0-0" and t.outcome == "Submitted" and len(t.steps) == 5
    code, out, _ = run_cli(["swe", "preds", "--run-dir", rd, "--model-name", "openai/gpt-5-mini"], capsys)
    assert code == 0
    preds = get_predictions_from_file(str(rd / "preds.json"), "unused", "test")
    assert sorted((p["instance_id"], p["model_name_or_path"]) for p in preds) == [
        ("toy__calc-1", "openai/gpt-5-mini"), ("toy__calc-2", "openai/gpt-5-mini")]
    by_id = {p["instance_id"]: p["model_patch"] for p in preds}
    assert by_id["toy__calc-1"].startswith("diff --git a/calc.py") and by_id["toy__calc-2"] == ""


def test_local_grader_report_marks_the_right_instance_resolved(tmp_path, dataset, capsys):
    from tts.swe.grade import write_preds

    rd = tmp_path / "run"
    write_preds({"toy__calc-1": FIX_PATCH, "toy__calc-2": WRONG_PATCHES["multiplies"]}, rd / "preds.json", "m/x")
    code, out, err = run_cli(["swe", "eval", "--run-dir", rd, "--dataset", dataset, "--grader", "local",
                              "--run-id", "t1"], capsys)
    assert code == 0, err
    assert "resolved 1/2: toy__calc-1" in out
    logs = rd / "logs" / "run_evaluation" / "t1" / "m__x"
    r1 = json.loads((logs / "toy__calc-1" / "report.json").read_text())
    r2 = json.loads((logs / "toy__calc-2" / "report.json").read_text())
    assert r1["toy__calc-1"]["resolved"] is True and r2["toy__calc-2"]["resolved"] is False
    assert r1["toy__calc-1"]["tests_status"]["FAIL_TO_PASS"] == {"success": ["test_calc.py::test_add"], "failure": []}
    assert r2["toy__calc-2"]["tests_status"]["FAIL_TO_PASS"] == {"success": [], "failure": ["test_calc.py::test_add"]}
    assert r2["toy__calc-2"]["tests_status"]["PASS_TO_PASS"]["success"] == ["test_calc.py::test_sub"]
    summary = json.loads((rd / "m__x.t1.json").read_text())
    assert summary["resolved_ids"] == ["toy__calc-1"] and summary["unresolved_ids"] == ["toy__calc-2"]


# -- end to end ----------------------------------------------------------------------------------------------


def judge(body):
    text = body["messages"][-1]["content"]
    parts = re.split(r"^## Candidate (\d+)$", text, flags=re.M)
    pick = next((n for n, b in zip(parts[1::2], parts[2::2], strict=True) if "+    return a + b" in b), "1")
    return {"id": "j", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"WINNER: {pick}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}


def test_run_end_to_end_with_replayed_rollouts_and_the_local_grader(tmp_path, dataset, capsys):
    saved = tmp_path / "saved"
    saved.mkdir()
    paths = []
    for iid in ("toy__calc-1", "toy__calc-2"):
        for j, patch in enumerate([WRONG_PATCHES["breaks-sub"], FIX_PATCH, WRONG_PATCHES["multiplies"]]):
            p = saved / f"{iid}-{j}.json"
            p.write_text(Trajectory(id=f"{iid}-{j}", task_id=iid, outcome="Submitted", patch=patch).model_dump_json())
            paths.append(p)
    rd = tmp_path / "run"
    with loopback_in_thread(reply=judge) as server:
        code, out, err = run_cli(["swe", "run", "--dataset", dataset, "--run-dir", rd, "--agent", "replay",
                                  "--replay", *paths, "--n", "3", "--rounds", "1", "--summarizer", "rule",
                                  "--votes", "2", "--model", "loop", "--backend", "openai", "--api-base", server.url,
                                  "--grader", "local", "--run-id", "e2e", "--quiet"], capsys)
    assert code == 0, err
    assert len(server.bodies) == 2 * 2 * (3 - 1)  # instances x V x (N - 1) judge calls
    assert "resolved 2/2" in out
    preds = json.loads((rd / "preds.json").read_text())
    assert preds["toy__calc-1"]["model_patch"] == FIX_PATCH and preds["toy__calc-1"]["model_name_or_path"] == "loop"
    # every step left its file
    assert len(list((rd / "rollouts").glob("*/*.json"))) == 6
    assert len(list((rd / "summaries").glob("*/*.json"))) == 6
    assert len(list((rd / "selections").glob("*/*.json"))) == 2


def test_step_by_step_pdr_rollout_summarize_select_rollout(tmp_path, dataset, capsys):
    saved = tmp_path / "saved"
    saved.mkdir()
    paths = []
    for j, patch in enumerate([WRONG_PATCHES["multiplies"], FIX_PATCH]):
        p = saved / f"t{j}.json"
        p.write_text(Trajectory(id=f"t{j}", task_id="toy__calc-1", outcome="Submitted", patch=patch).model_dump_json())
        paths.append(p)
    rd = tmp_path / "run"
    common = ["--run-dir", rd, "--instance-ids", "toy__calc-1", "--quiet"]
    agent = ["--agent", "replay", "--replay", *paths, "--n", "2"]
    with loopback_in_thread(reply=judge) as server:
        judge_flags = ["--model", "loop", "--backend", "openai", "--api-base", server.url, "--votes", "1"]
        steps = [
            ["rollout", "--dataset", dataset, *agent],
            ["summarize", "--summarizer", "rule"],
            ["select", "--select-k", "1", "--round", "0", *judge_flags],
            ["rollout", "--round", "1", *agent],
            ["summarize", "--summarizer", "rule"],
            ["select", *judge_flags],
            ["preds", "--model-name", "loop"],
        ]
        for step in steps:
            cmd = ["swe", step[0], *common[:2], *(common[2:] if step[0] != "preds" else []), *step[1:]]
            code, _, err = run_cli(cmd, capsys)
            assert code == 0, (step, err)
    iid = "toy__calc-1"
    sel0 = json.loads((rd / "selections" / iid / "round0.json").read_text())
    assert sel0["chosen"] == [f"{iid}/round0-1"]  # the fix
    r1 = Trajectory.model_validate_json((rd / "rollouts" / iid / "round1-0.json").read_text())
    assert r1.metadata["prior_ids"] == [f"{iid}/round0-1"]  # round 1 was shown round 0's pick
    preds = json.loads((rd / "preds.json").read_text())
    assert list(preds) == [iid] and preds[iid]["model_patch"] == FIX_PATCH
    assert len(server.bodies) == 2  # one pair per selection, V = 1


def test_swebench_harness_command_when_docker_is_there(tmp_path, monkeypatch):
    pytest.importorskip("swebench", reason="the swe extra is not installed (pip install -e '.[swe]')")
    from tts.swe import grade

    seen = {}
    monkeypatch.setattr(docker_probe, "docker_available", lambda: True)
    monkeypatch.setattr(grade.subprocess, "run", lambda cmd, cwd: seen.update(cmd=cmd, cwd=cwd) or
                        type("Done", (), {"returncode": 0})())
    preds = tmp_path / "preds.json"
    preds.write_text("{}")
    assert grade.run_swebench_harness("SWE-bench/SWE-bench_Verified", preds, run_id="r1", max_workers=8,
                                      cwd=tmp_path, instance_ids=["a__b-1"]) == 0
    assert seen["cmd"][1:] == ["-m", "swebench.harness.run_evaluation", "-d", "SWE-bench/SWE-bench_Verified",
                               "-s", "test", "-p", str(preds.resolve()), "-id", "r1", "--max_workers", "8",
                               "-i", "a__b-1"]
    assert seen["cwd"] == tmp_path


def test_hub_shaped_rows_and_unreachable_hub(tmp_path, monkeypatch):
    from tts.errors import UsageError
    from tts.swe import instance as inst_mod

    row = {"instance_id": "astropy__astropy-12907", "repo": "astropy/astropy", "base_commit": "d16bfe05a7",
           "problem_statement": "Modeling's separability_matrix ...", "FAIL_TO_PASS": '["test_a", "test_b"]',
           "PASS_TO_PASS": "[]", "version": 4.3, "environment_setup_commit": "298ccb478e", "hints_text": ""}
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (r,) = inst_mod.load_instances(str(path))
    assert r.FAIL_TO_PASS == ["test_a", "test_b"] and r.PASS_TO_PASS == [] and r.version == "4.3"
    assert r.metadata == {"environment_setup_commit": "298ccb478e", "hints_text": ""}
    assert r.source_repo is None and r.as_task().prompt == row["problem_statement"]
    # the run dir keeps the row as it came (the harness reads the extra columns from it)
    from tts.swe.rundir import RunDir

    RunDir(tmp_path / "run").save_instances([r])
    saved = json.loads((tmp_path / "run" / "instances.jsonl").read_text())
    assert saved["environment_setup_commit"] == "298ccb478e" and "metadata" not in saved
    assert RunDir(tmp_path / "run").load_instances() == [r]
    with pytest.raises(UsageError, match="not in"):
        inst_mod.load_instances(str(path), ids=["nope"])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(inst_mod, "_hub_reachable", lambda: False)
    with pytest.raises(UsageError, match="not available offline"):
        inst_mod.load_instances("verified")


def test_import_single_runs_of_every_format(tmp_path, capsys):
    rd = tmp_path / "run"
    paths = [FIX / "mswea_v1_text.traj.json", FIX / "terminus_trial", FIX / "atif.trajectory.json"]
    code, out, err = run_cli(["swe", "import", *paths, "--run-dir", rd], capsys)
    assert code == 0, err
    assert "imported 3 rollouts of 3 instances" in out
    saved = sorted(p.relative_to(rd / "rollouts").as_posix() for p in (rd / "rollouts").glob("*/*.json"))
    # an ATIF run is grouped by its task (here: no name in the file, so the instruction's hash), not its session
    from tts.swe.readers import read_atif

    atif_task = read_atif(FIX / "atif.trajectory.json").task_id
    assert atif_task.startswith("task-") and atif_task != "fix-git__a1b2"
    assert saved == sorted([f"{atif_task}/round0-0.json", "hello-world/round0-0.json", "mswea_v1_text/round0-0.json"])

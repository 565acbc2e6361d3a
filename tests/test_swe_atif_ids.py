"""Imported harbor ATIF runs (../shared/swe-real, see its SOURCES.md) are rollouts of the instance
`instances.jsonl` names, and a rollout no instance names is never skipped without a word: one function
(`tts.swe.importing.instance_id`, `read_terminal.atif_task_id` for an ATIF file) names both the rollout
folder and the row; `summarize`/`select` warn of each rollout left out, and stop with one line when
no instance has a rollout. harbor's golden files all carry the placeholder session id
`NORMALIZED_SESSION_ID`. Skipped, with the reason, when ../shared/swe-real is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_swe_real import ATIF, DATA, REAL, REASONER, one_line_error, run_cli

from tts.records import Trajectory
from tts.swe.readers import read_atif, read_trajectory

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real agent runs not found at {REAL} "
                                "(the project's ../shared/swe-real)")

PLACEHOLDER = "NORMALIZED_SESSION_ID"


def rows_of(rd: Path) -> list[dict]:
    return [json.loads(line) for line in (rd / "instances.jsonl").read_text().splitlines() if line.strip()]


def rename_row(rd: Path, old: str, new: str) -> None:
    """instances.jsonl with the row of `old` named `new` (what the import wrote before, for ATIF)."""
    rows = [{**r, "instance_id": new} if r["instance_id"] == old else r for r in rows_of(rd)]
    (rd / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def without_instruction(src: Path, dest: Path) -> Path:
    """The real file with its user messages emptied: no instruction to name the task by."""
    data = json.loads(src.read_text())
    for s in data["steps"]:
        if s["source"] == "user":
            s["message"] = ""
    dest.write_text(json.dumps(data))
    return dest


def the_task() -> str:
    (iid,) = {read_trajectory(p).task_id for p in ATIF}
    return iid


def test_atif_session_ids_are_the_placeholder():
    assert len(ATIF) == 4 and {json.loads(p.read_text())["session_id"] for p in ATIF} == {PLACEHOLDER}


def test_atif_rollout_folders_and_instance_rows_are_one_id(tmp_path, capsys):
    from tts.swe.importing import instance_id
    from tts.swe.read_terminal import atif_task_id

    rd = tmp_path / "r"
    code, out, err = run_cli(["swe", "import", *ATIF, "--run-dir", rd], capsys)
    assert code == 0 and "imported 4 rollouts of 1 instance" in out, err
    folders = {d.name for d in (rd / "rollouts").iterdir()}
    rows = {r["instance_id"] for r in rows_of(rd)}
    decided = {atif_task_id(json.loads(p.read_text()), p) for p in ATIF}
    assert folders == rows == decided == {instance_id(read_trajectory(p)) for p in ATIF}
    assert {instance_id(read_atif(p)) for p in ATIF} == rows  # read without a run id: still the task
    assert PLACEHOLDER not in rows and all(r.startswith("task-") for r in rows)
    for f in (rd / "rollouts").rglob("*.json"):
        assert Trajectory.model_validate_json(f.read_text()).task_id in rows
    code, out, err = run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule"], capsys)
    assert code == 0 and "4 summaries written" in out and "warning" not in err, err


def test_atif_without_instruction_is_named_by_its_file_not_the_placeholder_session(tmp_path, capsys):
    paths = [without_instruction(p, tmp_path / p.name) for p in (ATIF[0], ATIF[-1])]
    ids = [read_atif(p).task_id for p in paths]
    assert ids == [p.name.split(".")[0] for p in paths]  # two runs, two instances: never lumped together
    assert read_atif(json.loads(paths[0].read_text())).task_id not in (None, PLACEHOLDER)
    rd = tmp_path / "r"
    code, out, err = run_cli(["swe", "import", *paths, REASONER, "--run-dir", rd], capsys)
    assert code == 0 and "imported 6 rollouts of 6 instances" in out, err
    rows = {r["instance_id"]: r for r in rows_of(rd)}
    assert set(ids) <= set(rows) and rows[ids[0]]["problem_statement"] == ""  # the run does not state it
    assert set(rows) == {d.name for d in (rd / "rollouts").iterdir()}
    code, out, err = run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule"], capsys)
    assert code == 0 and "6 summaries written" in out and "warning" not in err, err


def test_summarize_stops_when_instances_jsonl_names_the_session_not_the_task(tmp_path, capsys):
    rd = tmp_path / "r"
    assert run_cli(["swe", "import", *ATIF, "--run-dir", rd], capsys)[0] == 0
    rename_row(rd, the_task(), PLACEHOLDER)
    code, out, err = run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule"], capsys)
    line = one_line_error(code, err)  # not "0 summaries written", exit 0
    assert the_task() in line and PLACEHOLDER in line and str(rd / "instances.jsonl") in line, line
    assert not (rd / "summaries").exists() and "summaries written" not in out


def test_summarize_warns_of_each_rollout_without_an_instance(tmp_path, capsys):
    rd = tmp_path / "r"
    code, out, err = run_cli(["swe", "import", *ATIF, REASONER, "--run-dir", rd], capsys)
    assert code == 0 and "imported 8 rollouts of 5 instances" in out, err
    rename_row(rd, the_task(), PLACEHOLDER)
    code, out, err = run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule"], capsys)
    assert code == 0 and "4 summaries written" in out, err
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert any(f"4 rollouts of {the_task()}" in ln and "left out" in ln for ln in warnings), err
    assert any(PLACEHOLDER in ln and "no rollouts" in ln for ln in warnings), err
    assert not (rd / "summaries" / the_task()).exists()
    # the instances asked for: the others' rollouts are meant to be left out, nothing to say
    (rd / "summaries").rename(tmp_path / "old")
    code, out, err = run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule", "--instance-ids",
                              "sqlfluff__sqlfluff-2419"], capsys)
    assert code == 0 and "1 summaries written" in out and "warning" not in err, err


def test_select_warns_of_each_rollout_without_an_instance(tmp_path, capsys):
    from tts.testing import loopback_in_thread

    rd = tmp_path / "r"
    assert run_cli(["swe", "import", *ATIF, REASONER, "--run-dir", rd], capsys)[0] == 0
    assert run_cli(["swe", "summarize", "--run-dir", rd, "--summarizer", "rule"], capsys)[0] == 0
    rename_row(rd, the_task(), PLACEHOLDER)
    with loopback_in_thread() as server:
        code, out, err = run_cli(["swe", "select", "--run-dir", rd, "--model", "judge", "--backend", "openai",
                                  "--api-base", server.url, "--votes", "1"], capsys)
    assert code == 2, (out, err)  # the renamed row has no rollouts: select says so
    assert any(f"4 rollouts of {the_task()}" in ln and "left out" in ln for ln in err.splitlines()), err
    assert f"no rollouts saved for {PLACEHOLDER}" in err

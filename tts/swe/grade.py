"""Predictions and evaluation: `preds.json` in swebench's format, the swebench harness (Docker or
Modal), and a local grader for fixtures that writes the harness's report shape.

Local grader, per instance: a fresh clone at `base_commit`, `test_patch` then the model patch
applied with `git apply`, the instance's `test_cmd` run, its pytest `-rA` lines parsed into a
status map, and FAIL_TO_PASS / PASS_TO_PASS checked with swebench's own report functions. Output:
`<out>/logs/run_evaluation/<run_id>/<model>/<iid>/report.json` (as the harness writes it) and
`<out>/<model>.<run_id>.json` (the run summary).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tts.errors import UsageError
from tts.swe.instance import SWEInstance
from tts.swe.rundir import write_atomic

_STATUS = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(\S+)", re.M)
_STATUS_AFTER = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)


def write_preds(patches: dict[str, str | None], path: str | Path, model_name: str) -> Path:
    """`{iid: {model_name_or_path, instance_id, model_patch}}`, the shape mini-swe-agent writes and
    swebench's `get_predictions_from_file` reads. A missing patch is written as ""."""
    data = {iid: {"model_name_or_path": model_name, "instance_id": iid, "model_patch": patch or ""}
            for iid, patch in patches.items()}
    p = Path(path)
    write_atomic(p, json.dumps(data, indent=2))
    return p


def read_preds(path: str | Path) -> dict[str, dict[str, Any]]:
    p = Path(path)
    try:
        if p.suffix == ".jsonl":
            rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        else:
            data = json.loads(p.read_text())
            rows = list(data.values()) if isinstance(data, dict) else data
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read predictions {p}: {exc}") from None
    return {r["instance_id"]: r for r in rows}


def parse_test_status(output: str) -> dict[str, str]:
    """Test id -> PASSED/FAILED/ERROR/... from pytest `-rA` summary lines or verbose lines."""
    out: dict[str, str] = {}
    for status, test in _STATUS.findall(output):
        out[test] = status
    for test, status in _STATUS_AFTER.findall(output):
        out.setdefault(test, status)
    return out


def _tests_report(status: dict[str, str], f2p: list[str], p2p: list[str]) -> tuple[dict[str, Any], bool]:
    """(tests_status, resolved), with swebench's functions when installed, else the same rules."""
    try:
        from swebench.harness.constants import EvalType, ResolvedStatus
        from swebench.harness.grading import get_eval_tests_report, get_resolution_status

        report = get_eval_tests_report(status, {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p},
                                       eval_type=EvalType.PASS_AND_FAIL)
        return report, get_resolution_status(report) == ResolvedStatus.FULL.value
    except ImportError:
        def split(tests: list[str]) -> dict[str, list[str]]:
            ok = [t for t in tests if status.get(t) in ("PASSED", "XFAIL")]
            return {"success": ok, "failure": [t for t in tests if t not in ok]}

        report = {"FAIL_TO_PASS": split(f2p), "PASS_TO_PASS": split(p2p),
                  "FAIL_TO_FAIL": {"success": [], "failure": []}, "PASS_TO_FAIL": {"success": [], "failure": []}}
        return report, not report["FAIL_TO_PASS"]["failure"] and not report["PASS_TO_PASS"]["failure"]


def _apply(repo: Path, patch: str, name: str) -> str | None:
    """None when it applied; else git's complaint."""
    f = repo.parent / f"{name}.diff"
    f.write_text(patch if patch.endswith("\n") else patch + "\n")
    from tts.swe.git import git

    out = git(repo, "apply", "--whitespace=nowarn", str(f), check=False)
    return None if out.returncode == 0 else (out.stderr.strip() or "git apply failed")


def grade_local(instance: SWEInstance, patch: str | None, *, model_name: str, run_id: str, out_dir: str | Path,
                timeout_s: int = 600) -> dict[str, Any]:
    """Grade one prediction; write and return the harness-shaped report `{iid: {...}}`."""
    from tts.swe.git import clone_at

    iid = instance.instance_id
    if instance.source_repo is None or not instance.test_cmd:
        raise UsageError(f"the local grader needs repo_path and test_cmd in the row of {iid}; "
                         f"use --grader swebench for SWE-bench instances")
    entry: dict[str, Any] = {"patch_is_None": patch is None, "patch_exists": bool(patch),
                             "patch_successfully_applied": False, "resolved": False}
    log_dir = Path(out_dir) / "logs" / "run_evaluation" / run_id / model_name.replace("/", "__") / iid
    log_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(log_dir / "patch.diff", patch or "")
    if patch:
        tmp = Path(tempfile.mkdtemp(prefix="tts-grade-"))
        try:
            repo = clone_at(str(instance.source_repo), instance.base_commit, tmp / "repo")
            err = _apply(repo, instance.test_patch, "test") if instance.test_patch else None
            err = err or _apply(repo, patch, "model")
            if err is not None:
                write_atomic(log_dir / "test_output.txt", f"patch did not apply:\n{err}\n")
            else:
                entry["patch_successfully_applied"] = True
                try:
                    run = subprocess.run(instance.test_cmd, shell=True, cwd=repo, capture_output=True, text=True,
                                         timeout=timeout_s)
                    output = run.stdout + run.stderr
                except subprocess.TimeoutExpired as exc:
                    output = f"{exc.stdout or ''}\ntest command timed out after {timeout_s}s"
                write_atomic(log_dir / "test_output.txt", output)
                tests, resolved = _tests_report(parse_test_status(output), instance.FAIL_TO_PASS,
                                                instance.PASS_TO_PASS)
                entry["resolved"] = resolved
                entry["tests_status"] = tests
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    report = {iid: entry}
    write_atomic(log_dir / "report.json", json.dumps(report, indent=4))
    return report


def grade_local_many(instances: Sequence[SWEInstance], preds: dict[str, dict[str, Any]], *, run_id: str,
                     out_dir: str | Path, max_workers: int = 4) -> dict[str, Any]:
    """Grade every prediction whose instance is in `instances`; write and return the run summary."""
    by_id = {i.instance_id: i for i in instances}
    todo = [(by_id[iid], p) for iid, p in preds.items() if iid in by_id]
    model = next((p.get("model_name_or_path") or "model" for _, p in todo), "model")

    def one(item: tuple[SWEInstance, dict[str, Any]]) -> dict[str, Any]:
        inst, pred = item
        return grade_local(inst, pred.get("model_patch") if pred.get("model_patch") else None,
                           model_name=pred.get("model_name_or_path") or model, run_id=run_id, out_dir=out_dir)

    with ThreadPoolExecutor(max(1, max_workers)) as pool:
        reports = list(pool.map(one, todo))
    return run_summary(instances, {iid: e for r in reports for iid, e in r.items()}, model=model, run_id=run_id,
                       out_dir=out_dir)


def run_summary(instances: Sequence[SWEInstance], entries: dict[str, dict[str, Any]], *, model: str, run_id: str,
                out_dir: str | Path) -> dict[str, Any]:
    """The run summary of per-instance report entries, in the harness's shape; written to
    `<out>/<model>.<run_id>.json` and returned."""
    resolved = sorted(i for i, e in entries.items() if e["resolved"])
    empty = sorted(i for i, e in entries.items() if not e["patch_exists"])
    completed = sorted(i for i, e in entries.items() if e["patch_successfully_applied"])
    summary = {
        "total_instances": len(instances), "submitted_instances": len(entries),
        "completed_instances": len(completed), "resolved_instances": len(resolved),
        "unresolved_instances": len(completed) - len(resolved), "empty_patch_instances": len(empty),
        "error_instances": len(entries) - len(completed) - len(empty),
        "completed_ids": completed, "resolved_ids": resolved,
        "unresolved_ids": sorted(set(completed) - set(resolved)), "empty_patch_ids": empty,
        "error_ids": sorted(set(entries) - set(completed) - set(empty)), "schema_version": 2,
    }
    path = Path(out_dir) / f"{model.replace('/', '__')}.{run_id}.json"
    write_atomic(path, json.dumps(summary, indent=4))
    return summary


def run_swebench_harness(dataset: str, preds_path: str | Path, *, run_id: str, split: str = "test",
                         max_workers: int = 4, modal: bool = False, cwd: str | Path = ".",
                         instance_ids: Sequence[str] = ()) -> int:
    """`python -m swebench.harness.run_evaluation ...` in `cwd`. Without Modal it needs Docker:
    checked first, so a machine with no daemon stops at once with a one-line UsageError."""
    if not modal:
        from tts.swe.docker_probe import require_docker

        require_docker("the swebench harness (--grader swebench)", "--grader local (rows with repo_path and test_cmd)"
                       " or --modal")
    try:
        import swebench  # noqa: F401
    except ImportError:
        from tts.errors import MissingDependency

        raise MissingDependency("the swebench harness needs the swe extra: pip install 'tts-scaling[swe]'") from None
    cmd = [sys.executable, "-m", "swebench.harness.run_evaluation", "-d", dataset, "-s", split,
           "-p", str(Path(preds_path).resolve()), "-id", run_id, "--max_workers", str(max_workers)]
    if instance_ids:
        cmd += ["-i", *instance_ids]
    if modal:
        cmd += ["--modal", "true"]
    return subprocess.run(cmd, cwd=cwd).returncode

"""Evaluation one instance at a time, through an executor: each instance graded where the executor
runs it (a Ray task on a node with Docker for the swebench harness), its logs and report shipped
back and written into the run dir, and the reports merged into one run summary.

    summary = await evaluate_on(executor, rows, preds, grader="swebench", run_id="v1", out_dir=rundir)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from tts.swe.grade import grade_local, run_summary, run_swebench_harness
from tts.swe.instance import SWEInstance
from tts.swe.rundir import write_atomic

Grader = Literal["local", "swebench"]


def eval_instance(grader: Grader, row: dict[str, Any], pred: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Grade one prediction in a private temp dir on whatever machine this runs; return
    `{"report": {iid: entry}, "files": {path under logs/: text}}`. Needs nothing shared with the
    driver: the row and the prediction travel as arguments."""
    inst = SWEInstance.from_row(row)
    iid = inst.instance_id
    model = pred.get("model_name_or_path") or "model"
    patch = pred.get("model_patch") or None
    tmp = Path(tempfile.mkdtemp(prefix="tts-eval-"))
    try:
        if grader == "local":
            report = grade_local(inst, patch, model_name=model, run_id=run_id, out_dir=tmp)
        else:
            (tmp / "rows.jsonl").write_text(json.dumps(row) + "\n")
            (tmp / "preds.json").write_text(json.dumps({iid: {**pred, "instance_id": iid}}))
            run_swebench_harness(str(tmp / "rows.jsonl"), tmp / "preds.json", run_id=run_id, max_workers=1,
                                 cwd=tmp, instance_ids=[iid])
            found = sorted((tmp / "logs" / "run_evaluation" / run_id).glob(f"*/{iid}/report.json"))
            report = json.loads(found[0].read_text()) if found else {iid: _errored(patch)}
        files = {str(p.relative_to(tmp)): p.read_text(encoding="utf-8", errors="replace")
                 for p in sorted((tmp / "logs").rglob("*")) if p.is_file()}
        return {"report": report, "files": files}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _errored(patch: str | None) -> dict[str, Any]:
    """The entry of an instance the harness wrote no report for (it errored before grading)."""
    return {"patch_is_None": patch is None, "patch_exists": bool(patch), "patch_successfully_applied": False,
            "resolved": False}


async def evaluate_on(executor: Any, instances: Sequence[SWEInstance], preds: dict[str, dict[str, Any]], *,
                      grader: Grader, run_id: str, out_dir: str | Path,
                      on_done: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every prediction whose instance is in `instances`, one `executor.call` each; files and the
    merged run summary (`<out>/<model>.<run_id>.json`) written here as each instance lands."""
    out = Path(out_dir)
    by_id = {i.instance_id: i for i in instances}
    todo = [(by_id[iid], p) for iid, p in preds.items() if iid in by_id]
    model = next((p.get("model_name_or_path") or "model" for _, p in todo), "model")

    async def one(inst: SWEInstance, pred: dict[str, Any]) -> dict[str, Any]:
        got = await executor.call(eval_instance, grader, inst.to_row(), pred, run_id)
        for rel, text in got["files"].items():
            write_atomic(out / rel, text)
        if on_done is not None:
            on_done(inst.instance_id)
        return got["report"]

    reports = await asyncio.gather(*(one(i, p) for i, p in todo))
    return run_summary(instances, {iid: e for r in reports for iid, e in r.items()}, model=model, run_id=run_id,
                       out_dir=out)

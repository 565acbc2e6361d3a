"""A `tts swe` run dir (tts/swe/rundir.py) as a view document: per instance, its rollouts (exit
status, steps, patch) with their summaries, RTV's selection per round (the same bracket as any
run), the chosen rollout, and whether the graded patch resolved the instance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts.display.html_view import bracket_section, esc
from tts.display.view_doc import task_dict

STEP_CHARS = 600


def _resolved(root: Path) -> dict[str, bool]:
    """instance id -> resolved, from the graders' report.json files (harness layout)."""
    out: dict[str, bool] = {}
    for report in sorted(root.glob("logs/run_evaluation/*/*/*/report.json")):
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for iid, rep in data.items():
            if isinstance(rep, dict) and "resolved" in rep:
                out[iid] = bool(rep["resolved"])
    return out


def _rollout_card(traj: Any, summary: Any, chosen: bool) -> str:
    steps = "".join(
        f"<div class=card><b>step {i}</b> <span class=note>exit {esc(s.exit_code)}</span>"
        + (f"<pre>{esc(s.thought[:STEP_CHARS])}</pre>" if s.thought else "")
        + f"<pre>$ {esc(s.action[:STEP_CHARS])}</pre><pre>{esc(s.observation[:STEP_CHARS])}</pre></div>"
        for i, s in enumerate(traj.steps, 1))
    summ = ""
    if summary is not None:
        evidence = "".join(f"<li>{esc(e.kind)}: {esc(e.quote)}</li>" for e in summary.evidence)
        summ = (f"<details><summary>summary</summary><p><b>approach</b> {esc(summary.approach)}</p>"
                f"<p><b>claims</b> {esc(summary.status_claim)}</p><ul>{evidence}</ul>"
                f"<p><b>failure modes</b> {esc('; '.join(summary.failure_modes))}</p></details>")
    return (f'<div class="card rollout" data-id="{esc(traj.id)}"><b>{"★ " if chosen else ""}{esc(traj.id)}</b> · '
            f"{esc(traj.outcome)} · {len(traj.steps)} steps{summ}"
            f"<details><summary>patch</summary><pre>{esc(traj.patch or '(none)')}</pre></details>"
            f"<details><summary>steps</summary><div class=cards>{steps}</div></details></div>")


def from_swe_run_dir(root: Path) -> dict[str, Any]:
    from tts.records import Trajectory, TrajectorySummary, Usage
    from tts.swe.results import SWEResult
    from tts.swe.rundir import RunDir, safe_name

    rd = RunDir(root)
    ids = [i.instance_id for i in rd.load_instances()] if rd.instances.is_file() else []
    for sub in ("rollouts", "results"):
        if (root / sub).is_dir():
            ids += [p.stem if p.is_file() else p.name for p in sorted((root / sub).iterdir())]
    resolved = _resolved(root)
    tasks = []
    for iid in dict.fromkeys(ids):
        res = rd.load(rd.result(iid), SWEResult)
        rollouts = [rd.load(p, Trajectory) for p in rd.rollouts_of(iid)]
        summaries = {p.stem: rd.load(p, TrajectorySummary)
                     for p in sorted((root / "summaries" / safe_name(iid)).glob("round*-*.json"))}
        chosen = res.chosen_id if res is not None else None
        cands = [{"id": t.id, "answer": t.outcome, "right": None, "round": None, "chosen": t.id == chosen,
                  "score": None} for t in rollouts if t is not None]
        selections = sorted((root / "selections" / safe_name(iid)).glob("round*.json"))
        extra = []
        picked = [(p.stem, rd.load_json(p) or {}) for p in selections]
        picked = [(stem, sel) for stem, sel in picked if sel.get("tournament")]
        last_tournament = picked[-1][1]["tournament"] if picked else None  # drawn as the task's bracket
        for stem, sel in picked[:-1]:  # earlier rounds' selections
            body = bracket_section({"tournament": sel["tournament"], "candidates": cands})
            extra.append((f"selection {stem}: chose {', '.join(sel.get('chosen', []))}", body))
        cards = "".join(_rollout_card(t, summaries.get(Path(t.id).name if "/" in t.id else t.id), t.id == chosen)
                        for t in rollouts if t is not None)
        extra.insert(0, (f"{len(cands)} rollouts", f'<div class="cards">{cards}</div>'))
        if res is not None and res.patch:
            extra.append(("chosen patch", f"<pre>{esc(res.patch)}</pre>"))
        task = task_dict(task_id=iid, strategy="swe", answer=chosen, correct=resolved.get(iid),
                         status="error" if res is not None and res.error else "ok" if res is not None else "unfinished",
                         error=res.error if res is not None else None, usage=res.usage if res is not None else Usage(),
                         wall_s=res.wall_s if res is not None else 0.0, candidates=cands,
                         metadata={"tournament": last_tournament,
                                   **({"judge_calls": res.judge_calls, "summary_calls": res.summary_calls,
                                       "agent_cost_usd": res.agent_cost_usd} if res is not None else {})},
                         calls=[])
        task["extra"] = extra
        tasks.append(task)
    return {"title": f"tts swe · {root}", "meta": {"instances": len(tasks), "resolved": sum(resolved.values())},
            "messages": {}, "tasks": tasks}

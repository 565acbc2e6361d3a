"""Saved runs -> round-0 rollouts of a run dir, idempotently.

    import_runs(rd, trajectories) -> ImportReport
    instances_of(trajectories, have) -> list[SWEInstance]   the instances.jsonl rows of the imported runs
    instance_id(traj) -> str                                 the instance a saved run is a rollout of

A trajectory is identified by a hash of its content (everything but its id), so importing the same
files twice adds nothing; a run whose file held nothing at all (no messages, no patch) is skipped with
its warning. Rollouts are grouped by `instance_id(traj)` (its `task_id`, which each reader decides, e.g.
`read_terminal.atif_task_id` for an ATIF file), numbered after those already there; `instances_of` names
the rows of `instances.jsonl` by the same function, so every imported rollout has its instance.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pydantic import Field

from tts.records import Record, Trajectory
from tts.swe.instance import SWEInstance
from tts.swe.rundir import RunDir

_PR = re.compile(r"<pr_description>\s*(?:Consider the following PR description:\s*)?(.*?)\s*</pr_description>", re.S)
_TASK = re.compile(r"Task Description:\s*\n(.*?)(?:\n\s*\nCurrent terminal state|\Z)", re.S)


class ImportReport(Record):
    added: dict[str, int] = Field(default_factory=dict)
    """Instance id -> rollouts added."""
    already: int = 0
    """Trajectories skipped because the run dir holds the same content."""
    skipped: list[str] = Field(default_factory=list)
    """Why a trajectory was not imported (an empty run)."""
    warnings: list[str] = Field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.added.values())

    def line(self, where: str) -> str:
        n, m = self.total, len(self.added)
        msg = f"imported {n} rollout{'s' * (n != 1)} of {m} instance{'s' * (m != 1)} into {where}"
        if self.already:
            msg += f" ({self.already} already there, skipped)"
        return msg


def instance_id(traj: Trajectory) -> str:
    """The instance a saved run is a rollout of: the one id its rollout folder (`rollouts/<iid>/`), its
    `instances.jsonl` row and a replay lookup use. The reader's `task_id`, else the run's id."""
    return traj.task_id or traj.id


def content_hash(traj: Trajectory) -> str:
    meta = {k: v for k, v in traj.metadata.items() if k not in ("content_hash", "warnings")}
    body = traj.model_copy(update={"id": "", "metadata": meta}).model_dump_json()
    return hashlib.sha256(body.encode()).hexdigest()


def _is_empty(traj: Trajectory) -> bool:
    return not traj.messages and not traj.steps and not traj.patch


def import_runs(rd: RunDir, trajectories: Sequence[Trajectory]) -> ImportReport:
    report = ImportReport()
    known: dict[str, set[str]] = {}
    for traj in trajectories:
        report.warnings.extend(traj.metadata.get("warnings") or [])
        if _is_empty(traj):
            report.skipped.extend(traj.metadata.get("warnings") or [f"{traj.id}: an empty run"])
            continue
        iid = instance_id(traj)
        if iid not in known:
            known[iid] = set()
            for path in rd.rollouts_of(iid):
                old = rd.load(path, Trajectory)
                if old is not None:
                    known[iid].add(old.metadata.get("content_hash") or content_hash(old))
        digest = content_hash(traj)
        if digest in known[iid]:
            report.already += 1
            continue
        known[iid].add(digest)
        k = len(rd.rollouts_of(iid))
        rd.save(rd.rollout(iid, 0, k), traj.model_copy(update={
            "id": f"{iid}/round0-{k}", "task_id": iid, "metadata": {**traj.metadata, "content_hash": digest}}))
        report.added[iid] = report.added.get(iid, 0) + 1
    return report


def problem_statement(traj: Trajectory) -> str:
    """The task as the agent was given it: mini-swe-agent's <pr_description>, Terminus's task description,
    else the first user message (cut to 4000 chars)."""
    first = next((m.content for m in traj.messages if m.role == "user" and isinstance(m.content, str)), "")
    m = _PR.search(first) or _TASK.search(first)
    text = (m.group(1) if m else first).strip()
    return text[:4000]


def instances_of(trajectories: Sequence[Trajectory], have: Sequence[SWEInstance] = ()) -> list[SWEInstance]:
    """`have`, plus a row for each imported instance it lacks (its problem statement taken from the run, empty
    when the run does not state it), so summaries and the judge see the task without a dataset (SWE-bench
    Verified needs the network). The rows are named as `import_runs` names the rollouts (`instance_id`), and
    every instance it imported gets one (an empty run, which it skips, gets none)."""
    rows = list(have)
    known = {r.instance_id for r in rows}
    stated: dict[str, str] = {}  # instance id -> the first problem statement one of its runs gives
    for traj in trajectories:
        iid = instance_id(traj)
        if iid not in known and not _is_empty(traj) and not stated.get(iid):
            stated[iid] = problem_statement(traj)
    rows.extend(SWEInstance(instance_id=iid, problem_statement=text, metadata={"from": "import"})
                for iid, text in stated.items())
    return rows

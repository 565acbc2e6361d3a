"""SWE-bench-shaped instances and the datasets they come from.

A row has `instance_id, repo, base_commit, problem_statement, FAIL_TO_PASS, PASS_TO_PASS` (the
two test lists may be JSON strings, as on the hub), optionally `version, patch, test_patch,
image_name`, and, for the local environment and grader, `repo_path` (a local git repository to
clone; defaults to `repo` when that is a path) and `test_cmd` (runs the tests, pytest `-rA` style
output). Unknown columns are kept in `metadata`.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from tts.errors import TaskFileError, UsageError
from tts.records import Record, Task


class SWEInstance(Record):
    instance_id: str
    repo: str = ""
    base_commit: str = ""
    problem_statement: str
    FAIL_TO_PASS: list[str] = Field(default_factory=list)
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    version: str | None = None
    patch: str | None = None
    """The reference patch: never shown to an agent."""
    test_patch: str | None = None
    """Applied by the grader before the tests run (the tests that check the fix)."""
    image_name: str | None = None
    repo_path: str | None = None
    test_cmd: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else []
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _str_version(cls, v: Any) -> Any:
        return None if v is None else str(v)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SWEInstance:
        known = set(cls.model_fields)
        data = {k: v for k, v in row.items() if k in known}
        extra = {k: v for k, v in row.items() if k not in known}
        data["metadata"] = {**extra, **(row.get("metadata") or {})}
        return cls.model_validate(data)

    def to_row(self) -> dict[str, Any]:
        """The row again, unknown columns back at the top level (the swebench harness reads some of
        them, e.g. `eval_script`, `image`, `log_parser` in its newer datasets)."""
        return {**self.metadata, **self.model_dump(exclude={"metadata"}, exclude_none=True)}

    @property
    def source_repo(self) -> str | None:
        """A local git repository to clone, if there is one."""
        if self.repo_path:
            return self.repo_path
        return self.repo if self.repo and Path(self.repo).is_dir() else None

    def as_task(self) -> Task:
        """The task a judge or summarizer sees: the problem statement, nothing of the answer."""
        return Task(id=self.instance_id, prompt=self.problem_statement,
                    metadata={"repo": self.repo, "base_commit": self.base_commit})


def read_instances_file(path: str | Path) -> list[SWEInstance]:
    """A local `.jsonl` (one row a line) or `.json` (a list) of SWE-bench-shaped rows."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskFileError(f"cannot read dataset file {p}: {exc.strerror}") from None
    rows: list[tuple[str, Any]]
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TaskFileError(f"{p}: not valid JSON ({exc})") from None
        rows = [(f"{p}[{i}]", r) for i, r in enumerate(data if isinstance(data, list) else [data])]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((f"{p}:{n}", json.loads(line)))
                except ValueError as exc:
                    raise TaskFileError(f"{p}:{n}: not valid JSON ({exc.msg})") from None
    out: list[SWEInstance] = []
    for where, row in rows:
        if not isinstance(row, dict):
            raise TaskFileError(f"{where}: expected a JSON object with instance_id and problem_statement")
        try:
            out.append(SWEInstance.from_row(row))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise TaskFileError(f"{where}: field '{'.'.join(map(str, err['loc']))}': {err['msg']}") from None
    if not out:
        raise TaskFileError(f"dataset file {p} has no rows")
    return out


_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _hub_reachable(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in _OFFLINE_VARS):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


DATASET_ALIASES = {
    "verified": "SWE-bench/SWE-bench_Verified",
    "lite": "SWE-bench/SWE-bench_Lite",
    "full": "SWE-bench/SWE-bench",
}


def load_instances(dataset: str, split: str = "test", ids: list[str] | None = None) -> list[SWEInstance]:
    """Rows from a local file, or from a hub dataset (e.g. `SWE-bench/SWE-bench_Verified`).

    A hub dataset with no network stops at once with a UsageError (no download that hangs)."""
    p = Path(dataset)
    if p.suffix in (".jsonl", ".json") or p.is_file():
        rows = read_instances_file(p)
    else:
        name = DATASET_ALIASES.get(dataset.lower(), dataset)
        if not _hub_reachable():
            raise UsageError(f"dataset {name!r} is not available offline; pass a local JSONL of SWE-bench-shaped "
                             f"rows instead (--dataset rows.jsonl)")
        try:
            from datasets import load_dataset
        except ImportError:
            from tts.errors import MissingDependency

            raise MissingDependency("loading a hub dataset needs the swe extra: "
                                    "pip install 'tts-scaling[swe]'") from None
        try:
            rows = [SWEInstance.from_row(dict(r)) for r in load_dataset(name, split=split)]
        except Exception as exc:  # the hub client raises many unrelated types
            raise UsageError(f"cannot load dataset {name!r} split {split!r}: {str(exc).splitlines()[0]}") from None
    if ids:
        wanted = set(ids)
        missing = wanted - {r.instance_id for r in rows}
        if missing:
            raise UsageError(f"instance ids not in {dataset}: {', '.join(sorted(missing))}")
        rows = [r for r in rows if r.instance_id in wanted]
    return rows

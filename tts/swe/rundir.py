"""A run directory where every step is a file, so a rerun skips what exists.

    <run>/instances.jsonl                         the rows the run was started with
    <run>/rollouts/<iid>/round<r>-<k>.json        a `Trajectory` (exit status, patch, messages)
    <run>/summaries/<iid>/round<r>-<k>.json       its `TrajectorySummary`
    <run>/selections/<iid>/round<r>.json          RTV's pick: {"k", "chosen": [rollout ids], "tournament"}
    <run>/results/<iid>.json                      the instance's `SWEResult` (chosen rollout and patch)
    <run>/preds.json                              swebench predictions, written by `tts swe preds`

Files are written atomically (temp file + rename): a crash leaves a step absent, never half-written.
A step over saved rollouts (`summarize`, `select`) first matches them to the instances
(`RunDir.matched`): rollouts no instance names are never skipped without a word.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from tts.errors import UsageError
from tts.redact import redact
from tts.swe.instance import SWEInstance

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("tts.swe")


def safe_name(iid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", iid)


def write_atomic(path: Path, text: str) -> None:
    """`text`, through the one redactor (`tts.redact`: an agent's error may quote its key), at `path`."""
    text = redact(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------------
    def rollout(self, iid: str, rnd: int, k: int) -> Path:
        return self.root / "rollouts" / safe_name(iid) / f"round{rnd}-{k}.json"

    def summary(self, iid: str, rnd: int, k: int) -> Path:
        return self.root / "summaries" / safe_name(iid) / f"round{rnd}-{k}.json"

    def selection(self, iid: str, rnd: int) -> Path:
        return self.root / "selections" / safe_name(iid) / f"round{rnd}.json"

    def result(self, iid: str) -> Path:
        return self.root / "results" / f"{safe_name(iid)}.json"

    @property
    def preds(self) -> Path:
        return self.root / "preds.json"

    @property
    def instances(self) -> Path:
        return self.root / "instances.jsonl"

    # -- io ------------------------------------------------------------------------------------
    def load(self, path: Path, model: type[M]) -> M | None:
        if not path.is_file():
            return None
        try:
            return model.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # pydantic's ValidationError is one
            first = str(exc).splitlines()
            why = first[1].strip() if len(first) > 1 else str(exc)
            raise UsageError(f"{path} is not a valid {model.__name__} ({why}); delete it to redo that step") from None

    def save(self, path: Path, record: BaseModel) -> None:
        write_atomic(path, record.model_dump_json(indent=1))

    def load_json(self, path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def save_json(self, path: Path, data: Any) -> None:
        write_atomic(path, json.dumps(data, indent=1))

    def save_instances(self, instances: list[SWEInstance]) -> None:
        write_atomic(self.instances, "".join(json.dumps(i.to_row()) + "\n" for i in instances))

    def load_instances(self) -> list[SWEInstance]:
        from tts.swe.instance import read_instances_file

        return read_instances_file(self.instances)

    def rollouts_of(self, iid: str) -> list[Path]:
        """Saved rollouts of an instance, in (round, index) order."""
        d = self.root / "rollouts" / safe_name(iid)

        def key(p: Path) -> tuple[int, int]:
            r, k = p.stem.removeprefix("round").split("-")
            return int(r), int(k)

        return sorted(d.glob("round*-*.json"), key=key) if d.is_dir() else []

    def rollout_instance(self, folder: str) -> str:
        """The instance id the rollouts in `rollouts/<folder>/` name (their folder is its `safe_name`)."""
        for path in self.rollouts_of(folder):
            try:
                iid = json.loads(path.read_text(encoding="utf-8")).get("task_id")
            except (OSError, ValueError, AttributeError):
                continue
            if iid and safe_name(iid) == folder:
                return str(iid)
        return folder

    def matched(self, rows: Sequence[SWEInstance], *, only: Sequence[str] | None = None,
                source: str | None = None) -> list[SWEInstance]:
        """`rows` (the instances a step works on, from `source`: a dataset, else `instances.jsonl`), once it
        has said what does not match the saved rollouts: a warning (logger `tts.swe`) naming each instance
        whose rollouts no row names, as they are left out, and one naming the rows with no rollouts; a
        one-line UsageError when no row has a rollout (none saved, or all under other ids). `only` (the ids
        asked for): rollouts of other instances are meant to be left out and are not named."""
        folders = sorted(d.name for d in (self.root / "rollouts").glob("*") if self.rollouts_of(d.name))
        saved = set(folders)
        names = {safe_name(r.instance_id) for r in rows}
        bare = [r.instance_id for r in rows if safe_name(r.instance_id) not in saved]
        orphans = [self.rollout_instance(d) for d in folders if d not in names]
        where, src = self.root / "rollouts", source or str(self.instances)
        if not folders:
            raise UsageError(f"no rollouts saved in {where}; run 'tts swe rollout' or 'tts swe import' first")
        if not rows:
            raise UsageError(f"none of the instances asked for ({_listing(list(only))}) is in {src}" if only
                             else f"{src} names no instance; rollouts are saved for {_listing(folders)}")
        if len(bare) == len(rows):
            which = (f"none of the instances asked for ({_listing(list(only))})" if only
                     else f"no instance in {src} ({_listing(bare)})")
            raise UsageError(f"{which} has rollouts in {where}; it holds rollouts of {_listing(orphans)} "
                             f"(rollouts/<instance id>/), which {src} must name")
        if not only:
            for iid in orphans:
                n = len(self.rollouts_of(iid))
                log.warning(f"{n} rollout{'s' * (n != 1)} of {iid} in {where} match{'es' * (n == 1)} no instance "
                            f"in {src}: left out")
        if bare:
            log.warning(f"no rollouts in {where} for {len(bare)} instance{'s' * (len(bare) != 1)} of {src}: "
                        f"{_listing(bare)}")
        return list(rows)


def _listing(ids: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit]) or "none"
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")

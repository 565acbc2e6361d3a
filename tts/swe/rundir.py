"""A run directory where every step is a file, so a rerun skips what exists.

    <run>/instances.jsonl                         the rows the run was started with
    <run>/rollouts/<iid>/round<r>-<k>.json        a `Trajectory` (exit status, patch, messages)
    <run>/summaries/<iid>/round<r>-<k>.json       its `TrajectorySummary`
    <run>/selections/<iid>/round<r>.json          RTV's pick: {"k", "chosen": [rollout ids], "tournament"}
    <run>/results/<iid>.json                      the instance's `SWEResult` (chosen rollout and patch)
    <run>/preds.json                              swebench predictions, written by `tts swe preds`

Files are written atomically (temp file + rename): a crash leaves a step absent, never half-written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from tts.errors import UsageError
from tts.redact import redact
from tts.swe.instance import SWEInstance

M = TypeVar("M", bound=BaseModel)


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

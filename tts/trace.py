"""Run traces as JSONL: a header line, then one line per model call (a `CallRecord` plus the task
id), and one line per finished task (its result, without the bulky texts).

    writer = TraceWriter("run.jsonl")
    await run_task(strategy, task, backend, on_call=writer.callback(task.id))   # live, per call
    writer.write_result(result)    # or after the fact: the result's calls, then its result line
    writer.close()

`read_trace(path)` reads one back (`tts show run.jsonl` prints it as a tree).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import Field, ValidationError

from tts.errors import UsageError
from tts.records import FORMAT_VERSION, CallRecord, Record, RunResult, Usage
from tts.redact import redact


class TraceHeader(Record):
    type: Literal["header"] = "header"
    format_version: int = FORMAT_VERSION
    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form run description (model, strategy spec, command line)."""


class TraceCall(CallRecord):
    type: Literal["call"] = "call"
    task_id: str | None = None


class TraceResult(Record):
    type: Literal["result"] = "result"
    task_id: str
    strategy: str
    answer: str | None = None
    correct: bool | None = None
    status: str = "ok"
    usage: Usage = Field(default_factory=Usage)
    """What the result's answers consumed (cache hits included)."""
    paid: Usage = Field(default_factory=Usage)
    """What this run paid for it (cache hits excluded)."""
    wall_s: float = 0.0
    metadata: dict[str, Any] = Field(default_factory=dict)


class Trace(Record):
    header: TraceHeader
    calls: list[TraceCall] = Field(default_factory=list)
    results: list[TraceResult] = Field(default_factory=list)


class TraceWriter:
    """Appends trace lines to a file; usable as an `on_call` callback (`writer.callback(task_id)`)."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._live: set[str | None] = set()
        """Task ids whose calls were written live, so `write_result` does not write them again."""
        self._line(TraceHeader(meta=meta or {}))

    def _line(self, rec: Record) -> None:
        if self._file is None:
            raise ValueError(f"trace {self.path} is closed")
        self._file.write(redact(rec.model_dump_json()) + "\n")  # no secret in any line (tts.redact)

    def write_call(self, rec: CallRecord, task_id: str | None = None) -> None:
        self._line(TraceCall(**rec.model_dump(), task_id=task_id))

    def callback(self, task_id: str | None = None) -> Callable[[CallRecord], None]:
        """An `on_call` for one task's run: each call is written as it completes."""
        self._live.add(task_id)
        return lambda rec: self.write_call(rec, task_id)

    def __call__(self, rec: CallRecord) -> None:
        """`on_call` without a task id."""
        self._live.add(None)
        self.write_call(rec)

    def write_result(self, res: RunResult) -> None:
        """The result's calls (unless they were written live) and a result line; flushed."""
        if res.task_id not in self._live:
            for rec in res.trace:
                self.write_call(rec, res.task_id)
        self._line(TraceResult(task_id=res.task_id, strategy=res.strategy, answer=res.answer, correct=res.correct,
                               status=res.status, usage=res.usage, paid=res.paid, wall_s=res.wall_s,
                               metadata=_small(res.metadata)))
        self.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _small(meta: dict[str, Any]) -> dict[str, Any]:
    """Numbers, strings and short lists only: the trace is for accounting, not for transcripts."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, int | float | str | bool) or value is None:
            out[key] = value
        elif isinstance(value, list) and len(value) <= 32 and all(isinstance(v, int | float | str) for v in value):
            out[key] = value
    return out


def read_trace(path: str | Path) -> Trace:
    """A trace file back as records; UsageError (one line) naming the file and line when it is not one."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read trace {p}: {exc.strerror or exc}") from None
    header: TraceHeader | None = None
    calls: list[TraceCall] = []
    results: list[TraceResult] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "header":
                header = TraceHeader.model_validate(data)
                if header.format_version > FORMAT_VERSION:
                    raise UsageError(f"{p}: trace format {header.format_version} is newer than this tts "
                                     f"understands ({FORMAT_VERSION}); upgrade tts")
            elif kind == "call":
                calls.append(TraceCall.model_validate(data))
            elif kind == "result":
                results.append(TraceResult.model_validate(data))
            else:
                raise ValueError("no 'type' header/call/result")
        except (ValueError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            raise UsageError(f"{p}:{number}: not a tts trace line ({reason})") from None
    if header is None:
        raise UsageError(f"{p}: not a tts trace (no header line); write one with `tts run --trace FILE`")
    return Trace(header=header, calls=calls, results=results)

"""Run traces as JSONL: a header line, then one line per model call (a `CallRecord` plus the task
id), and one line per finished task (its result, without the bulky texts).

What was said (a record's `messages` and `reply`, kept by `run_task(trace_content=True)`) is
stored without repeating itself: each distinct message is one `message` line (id = a hash of the
message), written before the first call that sent it, and a call line names its messages by id.
`read_trace` puts the messages back on each call (one shared object per distinct message).

    writer = TraceWriter("run.jsonl")
    await run_task(strategy, task, backend, on_call=writer.callback(task.id))   # live, per call
    writer.write_result(result)    # or after the fact: the result's calls, then its result line
    writer.close()

`read_trace(path)` reads one back (`tts show run.jsonl` prints it as a tree).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import Field, ValidationError

from tts.errors import UsageError
from tts.records import FORMAT_VERSION, CallRecord, Message, Record, RunResult, Usage
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
    message_ids: list[str] | None = None
    """The ids of the messages it sent (`message` lines of the same trace)."""


class TraceMessage(Record):
    type: Literal["message"] = "message"
    id: str
    message: Message


def message_id(msg: Message) -> str:
    """A message's id in a trace: a hash of its content (equal messages, one id)."""
    return hashlib.sha256(msg.model_dump_json(exclude_none=True).encode()).hexdigest()[:16]


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
    reference: str | None = None
    """The task's reference answer, when it has one."""
    error: str | None = None
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    """Each candidate's id, answer, round, score, whether it was chosen, and whether it is right."""


class Trace(Record):
    header: TraceHeader
    calls: list[TraceCall] = Field(default_factory=list)
    results: list[TraceResult] = Field(default_factory=list)
    messages: dict[str, Message] = Field(default_factory=dict)
    """The distinct messages the calls sent, by id."""


class TraceWriter:
    """Appends trace lines to a file; usable as an `on_call` callback (`writer.callback(task_id)`)."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None, content: bool = True) -> None:
        self.path = Path(path)
        self.content = content
        """Write what was said, when the records hold it (False: accounting only). Every line, what was
        said included, passes through the one redactor (`tts.redact`)."""
        self._written: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._live: set[str | None] = set()
        """Task ids whose calls were written live, so `write_result` does not write them again."""
        self._line(TraceHeader(meta=meta or {}))

    def _line(self, rec: Record, exclude: set[str] | None = None, exclude_none: bool = False) -> None:
        if self._file is None:
            raise ValueError(f"trace {self.path} is closed")
        # no secret in any line (tts.redact)
        self._file.write(redact(rec.model_dump_json(exclude=exclude, exclude_none=exclude_none)) + "\n")

    def write_call(self, rec: CallRecord, task_id: str | None = None) -> None:
        fields = rec.model_dump(exclude={"messages", "reply"})
        ids = None
        if self.content and rec.messages is not None:
            ids = []
            for msg in rec.messages:
                mid = message_id(msg)
                if mid not in self._written:
                    self._written.add(mid)
                    self._line(TraceMessage(id=mid, message=msg), exclude_none=True)
                ids.append(mid)
        reply = rec.reply if self.content else None
        self._line(TraceCall(**fields, reply=reply, task_id=task_id, message_ids=ids), {"messages"})

    def callback(self, task_id: str | None = None) -> Callable[[CallRecord], None]:
        """An `on_call` for one task's run: each call is written as it completes."""
        self._live.add(task_id)
        return lambda rec: self.write_call(rec, task_id)

    def __call__(self, rec: CallRecord) -> None:
        """`on_call` without a task id."""
        self._live.add(None)
        self.write_call(rec)

    def write_result(self, res: RunResult, reference: str | None = None) -> None:
        """The result's calls (unless they were written live) and a result line; flushed.
        `reference`: the task's answer, to grade each candidate."""
        from tts.answers import is_correct

        if res.task_id not in self._live:
            for rec in res.trace:
                self.write_call(rec, res.task_id)
        chosen = {id(c) for c in res.chosen} | {c.id for c in res.chosen}
        candidates = [{"id": c.id, "answer": c.answer, "round": c.metadata.get("round"), "score": c.score,
                       "chosen": id(c) in chosen or c.id in chosen, "right": is_correct(c.answer, reference)}
                      for c in res.candidates]
        self._line(TraceResult(task_id=res.task_id, strategy=res.strategy, answer=res.answer, correct=res.correct,
                               status=res.status, usage=res.usage, paid=res.paid, wall_s=res.wall_s,
                               metadata=_small(res.metadata), reference=reference,
                               error=res.error,
                               candidates=candidates))
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


KEPT_DIGESTS = ("votes", "tournament")
"""Metadata digests a trace keeps whole: the vote tally and RTV's bracket (`tts view` draws them)."""


def _small(meta: dict[str, Any]) -> dict[str, Any]:
    """Numbers, strings, short lists and the digests above: the trace is for accounting and review."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in KEPT_DIGESTS and isinstance(value, dict):
            out[key] = value
        elif isinstance(value, int | float | str | bool) or value is None:
            out[key] = value
        elif isinstance(value, list) and len(value) <= 32 and all(isinstance(v, int | float | str) for v in value):
            out[key] = value
    return out


_FAST = {'{"type":"message"': "message", '{"type":"result"': "result"}


def _kind(line: str) -> tuple[str | None, Any]:
    """A line's type, and its parsed JSON unless pydantic can parse the line itself (the lines tts
    writes: a message or result starts with its type, a call names it once at top level; parsing
    once instead of twice reads a big trace about 4x faster)."""
    head = line[:17]
    if head in _FAST:
        return _FAST[head], None
    if line.startswith('{"path":') and '"type":"call"' in line:  # in a string it would be escaped: \"type\"
        return "call", None
    data = json.loads(line)
    return (data.get("type") if isinstance(data, dict) else None), data


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
    messages: dict[str, Message] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            kind, data = _kind(line)
            if kind == "header":
                header = TraceHeader.model_validate(data)
                if header.format_version > FORMAT_VERSION:
                    raise UsageError(f"{p}: trace format {header.format_version} is newer than this tts "
                                     f"understands ({FORMAT_VERSION}); upgrade tts")
            elif kind == "message":
                msg = TraceMessage.model_validate_json(line) if data is None else TraceMessage.model_validate(data)
                messages[msg.id] = msg.message
            elif kind == "call":
                call = TraceCall.model_validate_json(line) if data is None else TraceCall.model_validate(data)
                if call.message_ids is not None:
                    missing = [m for m in call.message_ids if m not in messages]
                    if missing:
                        raise ValueError(f"message {missing[0]} is named before its message line")
                    call.messages = [messages[m] for m in call.message_ids]
                calls.append(call)
            elif kind == "result":
                results.append(TraceResult.model_validate_json(line) if data is None else
                               TraceResult.model_validate(data))
            else:
                raise ValueError("no 'type' header/message/call/result")
        except (ValueError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            raise UsageError(f"{p}:{number}: not a tts trace line ({reason})") from None
    if header is None:
        raise UsageError(f"{p}: not a tts trace (no header line); write one with `tts run --trace FILE`")
    return Trace(header=header, calls=calls, results=results, messages=messages)

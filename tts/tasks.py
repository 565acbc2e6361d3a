"""Task files: JSONL, one task a line: {"id", "prompt"} or {"id", "messages"}, optional "answer"
and "metadata". Errors name the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from tts.errors import TaskFileError
from tts.records import Task


def parse_task_line(line: str, where: str) -> Task:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise TaskFileError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
    if not isinstance(data, dict):
        raise TaskFileError(f"{where}: expected a JSON object like {{\"id\": ..., \"prompt\": ...}}")
    if "answer" in data and data["answer"] is not None and not isinstance(data["answer"], str):
        data["answer"] = str(data["answer"])
    if "id" in data and not isinstance(data["id"], str):
        data["id"] = str(data["id"])
    try:
        return Task.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "task"
        msg = "unknown field (allowed: id, prompt, messages, answer, metadata)" if err["type"] == "extra_forbidden" \
            else err["msg"]
        raise TaskFileError(f"{where}: field '{field}': {msg}") from None


def load_tasks(path: str | Path) -> list[Task]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TaskFileError(f"task file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskFileError(f"cannot read task file {p}: {exc}") from None
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        task = parse_task_line(line, f"{p}:{number}")
        if task.id in seen:
            raise TaskFileError(f"{p}:{number}: duplicate task id {task.id!r}; ids must be unique")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise TaskFileError(f"task file {p} has no tasks")
    return tasks

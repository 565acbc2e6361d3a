"""What `tts view` shows, as plain data: a document of tasks (outcome, candidates, votes, RTV's
bracket, every call with what it read and said) built from a trace file, from RunResults (the
notebook) or from a compare's results.jsonl; `tts.display.view_swe` builds one from a `tts swe`
run dir. `tts.display.html_view` renders any of them, so there is one renderer.

    doc = {"title", "meta": {...}, "messages": {id: {"role", "content"}}, "tasks": [task, ...]}
    task = {"id", "group", "strategy", "answer", "reference", "correct", "status", "error", "usage",
            "wall_s", "candidates": [{"id", "answer", "right", "round", "chosen", "score"}],
            "votes", "tournament", "calls": [call, ...], "judge_wrong", "extra": [(title, html)]}
    call = {"path", "role", "sample_index", "prompt_tokens", "completion_tokens", "latency_s",
            "cached", "started_s", "error", "message_ids", "reply"}

It reads records by attribute and imports no record class (as the rest of `tts.display`), so the
records can delegate their notebook display here without an import cycle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from tts.experiments.selection_metrics import contests


def message_dict(msg: Any) -> dict[str, str]:
    content = msg.content
    text = content if isinstance(content, str) else "" if content is None else json.dumps(content, indent=1)
    if getattr(msg, "tool_calls", None):
        text += ("\n" if text else "") + json.dumps(msg.tool_calls, indent=1)
    return {"role": msg.role, "content": text}


def call_dict(rec: Any, message_ids: list[str] | None) -> dict[str, Any]:
    return {"path": rec.path, "role": rec.role, "sample_index": rec.sample_index,
            "prompt_tokens": rec.usage.prompt_tokens, "completion_tokens": rec.usage.completion_tokens,
            "latency_s": rec.latency_s, "cached": rec.cached, "started_s": rec.started_s, "error": rec.error,
            "message_ids": message_ids, "reply": rec.reply}


USAGE_KEYS = ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "cost_usd")


def judge_wrong(task: dict[str, Any]) -> int:
    """Contests of the task's tournament with exactly one right side that the other side won."""
    return sum(not won for _, won, _, _ in contests(task))


def task_dict(*, task_id: str, strategy: str, answer: Any, correct: bool | None, status: str, error: str | None,
              usage: Any, wall_s: float, candidates: list[dict[str, Any]], metadata: dict[str, Any],
              calls: list[dict[str, Any]], reference: str | None = None, group: str | None = None) -> dict[str, Any]:
    u = usage if isinstance(usage, dict) else {k: getattr(usage, k) for k in USAGE_KEYS}
    task = {"id": task_id, "group": group, "strategy": strategy, "answer": answer, "reference": reference,
            "correct": correct, "status": status, "error": error,
            "usage": {k: u.get(k, 0) for k in USAGE_KEYS},
            "wall_s": wall_s, "candidates": candidates, "votes": metadata.get("votes"),
            "tournament": metadata.get("tournament"), "calls": calls,
            "metadata": {k: v for k, v in metadata.items() if k not in ("votes", "tournament")}, "extra": []}
    task["judge_wrong"] = judge_wrong(task)
    return task


def from_trace(trace: Any, title: str) -> dict[str, Any]:
    """A trace file (`tts.trace.read_trace`) as a view document."""
    calls: dict[Any, list[dict[str, Any]]] = {}
    for c in trace.calls:
        calls.setdefault(c.task_id, []).append(call_dict(c, c.message_ids))
    tasks = []
    for r in trace.results:
        group, _, tid = r.task_id.rpartition(" | ")  # tts compare --trace: "label | task"
        tasks.append(task_dict(task_id=tid, group=group or None, strategy=r.strategy, answer=r.answer,
                               correct=r.correct, status=r.status, error=r.error, usage=r.usage, wall_s=r.wall_s,
                               candidates=r.candidates, metadata=r.metadata, calls=calls.pop(r.task_id, []),
                               reference=r.reference))
    for tid, rest in calls.items():  # calls of tasks that never finished (a killed run)
        tasks.append(task_dict(task_id=str(tid), strategy=rest[0]["path"].split("/")[0], answer=None, correct=None,
                               status="unfinished", error="no result line: the run stopped before this task ended",
                               usage={"calls": len(rest), "prompt_tokens": sum(c["prompt_tokens"] for c in rest),
                                      "completion_tokens": sum(c["completion_tokens"] for c in rest)},
                               wall_s=0.0, candidates=[], metadata={}, calls=rest))
    messages = {mid: message_dict(m) for mid, m in trace.messages.items()}
    return {"title": title, "meta": {"created": trace.header.created, **trace.header.meta}, "messages": messages,
            "tasks": tasks}


def from_results(results: Sequence[Any], references: dict[str, str | None] | None = None,
                 title: str = "tts results") -> dict[str, Any]:
    """RunResults (in memory: the notebook) as a view document; messages are taken from the call
    records when the run kept them (`trace_content=True`)."""
    from tts.answers import is_correct

    messages: dict[str, dict[str, str]] = {}
    tasks = []
    for res in results:
        ref = (references or {}).get(res.task_id)
        chosen = {c.id for c in res.chosen}
        cands = [{"id": c.id, "answer": c.answer, "right": is_correct(c.answer, ref), "round": c.metadata.get("round"),
                  "chosen": c.id in chosen, "score": c.score} for c in res.candidates]
        calls = []
        for rec in res.trace:
            ids = None
            if rec.messages is not None:
                ids = []
                for m in rec.messages:
                    shown = message_dict(m)
                    mid = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]
                    messages.setdefault(mid, shown)
                    ids.append(mid)
            calls.append(call_dict(rec, ids))
        tasks.append(task_dict(task_id=res.task_id, strategy=res.strategy, answer=res.answer, correct=res.correct,
                               status=res.status, error=res.error, usage=res.usage, wall_s=res.wall_s,
                               candidates=cands, metadata=res.metadata, calls=calls, reference=ref))
    return {"title": title, "meta": {}, "messages": messages, "tasks": tasks}


def from_compare_lines(rows: dict[str, Iterable[dict[str, Any]]], title: str = "tts compare") -> dict[str, Any]:
    """A compare's per-(configuration, task) lines (results.jsonl) as a view document: outcomes,
    candidates, votes and brackets; no calls (`tts compare --trace` keeps those)."""
    tasks = []
    for label, lines in rows.items():
        for x in lines:
            usage = x.get("usage") or {}
            cands = [{**c, "chosen": c.get("answer") == x.get("answer")} for c in x.get("candidates") or []]
            tasks.append(task_dict(task_id=x["task"], group=label, strategy=x.get("family", label),
                                   answer=x.get("answer"), correct=x.get("correct"), status=x.get("status", "ok"),
                                   error=x.get("error"), usage=usage, wall_s=x.get("measured_wall_s", 0.0),
                                   candidates=cands, metadata={"votes": x.get("votes"),
                                                               "tournament": x.get("tournament")}, calls=[]))
    return {"title": title, "meta": {}, "messages": {}, "tasks": tasks}

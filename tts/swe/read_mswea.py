"""mini-swe-agent's saved runs: a trajectory (format 1.1, `mini-swe-agent-1`, a bare message list) and a
`mini-extra swebench` batch dir."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tts.errors import UsageError
from tts.records import Message, Step, Trajectory
from tts.swe.read_common import (
    BASH_BLOCK,
    TRAJ_LAYOUTS,
    as_content,
    as_text,
    bad_input,
    kind_of,
    layout_error,
    load_json,
    one_line_text,
    thought_of,
)

_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_OUTPUT = re.compile(r"<output>\n?(.*?)</output>", re.S)
SUBMIT_MARKER = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def _observation(msg: dict[str, Any]) -> tuple[str, int | None]:
    extra = msg.get("extra") if isinstance(msg.get("extra"), dict) else {}
    text = as_text(msg.get("content"))
    code = extra.get("returncode")
    if not isinstance(code, int):
        m = _RETURNCODE.search(text)
        code = int(m.group(1)) if m else None
    raw = extra.get("raw_output")
    if raw is None:
        m = _OUTPUT.search(text)
        raw = m.group(1) if m else text
    return as_text(raw), code


def _is_observation(msg: dict[str, Any], pending: list[Step]) -> bool:
    """A user message after text actions is their output, unless the agent rejected the reply (a format
    error: mini-swe-agent answers with instructions and runs nothing)."""
    extra = msg.get("extra") if isinstance(msg.get("extra"), dict) else {}
    if "returncode" in extra or "raw_output" in extra:
        return True
    if extra.get("interrupt_type") or "FormatError" in str(extra.get("exception_type", "")):
        return False
    text = as_text(msg.get("content"))
    return bool(_RETURNCODE.search(text) or "<output>" in text) or any(SUBMIT_MARKER in s.action for s in pending)


def _submission_of(output: str) -> str:
    """What a submit command printed, without the marker line."""
    lines = output.split("\n", 1)
    return lines[1] if lines[0].strip() == SUBMIT_MARKER else output


def read_mswea(src: str | Path | dict[str, Any] | list[Any], traj_id: str | None = None) -> Trajectory:
    data, name = load_json(src, "a mini-swe-agent trajectory ({info, messages})")
    warnings: list[str] = []
    if isinstance(data, list):  # older `mini` saved the bare message list
        data = {"messages": data, "trajectory_format": "mini-swe-agent-list"}
    if not isinstance(data, dict):
        raise bad_input(name, f"the JSON is {kind_of(data)}", "a mini-swe-agent trajectory ({info, messages})")
    if "messages" not in data:
        raise bad_input(name, "no 'messages'", "a mini-swe-agent trajectory ({info, messages})")
    raw = data["messages"]
    if not isinstance(raw, list):
        raise bad_input(name, f"'messages' is {kind_of(raw)}", "a list of {role, content} objects")
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise bad_input(name, f"messages[{i}] is {kind_of(m)}", "a {role, content} object")
    if not raw:
        warnings.append(f"{name}: no messages (an empty run)")
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    messages: list[Message] = []
    steps: list[Step] = []
    by_call: dict[str, Step] = {}  # tool_call_id -> its step, filled when the tool message arrives
    unmatched: list[Step] = []  # tool-call steps whose tool message has no id: matched by position
    text_pending: list[Step] = []  # text actions waiting for their output message
    format_errors = 0
    exit_status = info.get("exit_status") or None
    submission = info.get("submission")
    error = info.get("exception_str") or None
    for m in raw:
        role = m.get("role")
        if role == "exit":
            extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
            exit_status = exit_status or extra.get("exit_status")
            if submission in (None, ""):
                submission = extra.get("submission")
            error = error or extra.get("exception_str") or None
            continue
        if role not in ("system", "user", "assistant", "tool"):
            continue
        extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
        if role == "user" and extra.get("interrupt_type") == "FormatError" and not text_pending:
            # mini-swe-agent 2 keeps a rejected reply only in its format-error message: show it, run nothing
            format_errors += 1
            if "model_response" in extra and messages and messages[-1].role != "assistant":
                messages.append(Message(role="assistant", content=as_text(extra["model_response"])))
        content = m.get("content")
        calls_raw = m.get("tool_calls") if isinstance(m.get("tool_calls"), list) else []
        call_id = m.get("tool_call_id")
        messages.append(Message(role=role, content=as_content(content),
                                tool_calls=[c for c in calls_raw if isinstance(c, dict)] or None,
                                tool_call_id=None if call_id is None else str(call_id)))
        if role == "assistant":
            text = as_text(content)
            reasoning = m.get("reasoning_content") or (m.get("provider_specific_fields") or {}).get("reasoning_content")
            calls = [c for c in calls_raw if isinstance(c, dict)]
            text_pending = []
            if calls:
                for i, call in enumerate(calls):
                    fn = call.get("function") or {}
                    try:
                        args = json.loads(fn.get("arguments") or "{}")
                    except (TypeError, ValueError):
                        args = {"command": as_text(fn.get("arguments"))}
                    action = args.get("command", args) if isinstance(args, dict) else args
                    step = Step(thought=thought_of(text, reasoning) if i == 0 else "", action=as_text(action))
                    steps.append(step)
                    if call.get("id"):
                        by_call[str(call["id"])] = step
                    else:
                        unmatched.append(step)
            else:
                extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
                actions = [as_text(a.get("command", "")) for a in extra.get("actions") or [] if isinstance(a, dict)] \
                    or BASH_BLOCK.findall(text)
                for i, action in enumerate(actions):
                    step = Step(thought=thought_of(text, reasoning) if i == 0 else "", action=action.strip())
                    steps.append(step)
                    text_pending.append(step)
        elif role == "tool":
            step = by_call.pop(str(call_id or ""), None) or (unmatched.pop(0) if unmatched else None)
            if step is not None:
                step.observation, step.exit_code = _observation(m)
        elif role == "user" and text_pending:
            if _is_observation(m, text_pending):
                text_pending[-1].observation, text_pending[-1].exit_code = _observation(m)
            else:  # rejected: nothing ran
                format_errors += 1
                steps = [s for s in steps if all(s is not p for p in text_pending)]
            text_pending = []
    if submission in (None, "") and steps and SUBMIT_MARKER in steps[-1].action and steps[-1].observation:
        submission = _submission_of(steps[-1].observation)  # a bare list: the submit command's output
        exit_status = exit_status or "Submitted"
    stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
    model_cfg = ((info.get("config") or {}).get("model") or {}) if isinstance(info.get("config"), dict) else {}
    stem = Path(name).name.split(".")[0] if name != "trajectory" else None
    iid = data.get("instance_id") or traj_id or stem
    meta: dict[str, Any] = {"format": data.get("trajectory_format", "mini-swe-agent-1"),
                            "cost_usd": stats.get("instance_cost"), "api_calls": stats.get("api_calls"),
                            "model": model_cfg.get("model_name") if isinstance(model_cfg, dict) else None}
    if error:
        meta["error"] = one_line_text(as_text(error))
    if format_errors:
        meta["format_errors"] = format_errors
    if warnings:
        meta["warnings"] = warnings
    return Trajectory(id=traj_id or iid or "trajectory", task_id=iid, messages=messages, steps=steps,
                      outcome=exit_status, patch=as_text(submission) or None, metadata=meta)


def _read_preds(path: Path) -> dict[str, dict[str, Any]]:
    """swebench predictions (a dict keyed by instance id, or a list), by instance id."""
    expected = "swebench predictions: {instance_id: {instance_id, model_name_or_path, model_patch}} or a list"
    data, name = load_json(path, expected)
    rows = list(data.values()) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise bad_input(name, f"the JSON is {kind_of(data)}", expected)
    out: dict[str, dict[str, Any]] = {}
    keys = list(data) if isinstance(data, dict) else [None] * len(rows)
    for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
        if not isinstance(row, dict):
            raise bad_input(name, f"entry {key or i} is {kind_of(row)}", expected)
        iid = row.get("instance_id") or key
        if not iid:
            raise bad_input(name, f"entry {i} has no instance_id", expected)
        out[str(iid)] = row
    return out


def read_mswea_batch(out_dir: str | Path) -> list[Trajectory]:
    """Every `<iid>/<iid>.traj.json` under a batch output dir; the patch from `preds.json` when present."""
    root = Path(out_dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory; expected {TRAJ_LAYOUTS}")
    preds = _read_preds(root / "preds.json") if (root / "preds.json").is_file() else {}
    out = []
    for path in sorted(root.glob("*/*.traj.json")):
        iid = path.parent.name
        traj = read_mswea(path, traj_id=iid).model_copy(update={"task_id": iid})
        pred = preds.get(iid)
        if pred is not None and pred.get("model_patch"):
            traj = traj.model_copy(update={"patch": as_text(pred["model_patch"])})
        out.append(traj)
    if not out:
        raise layout_error(root)
    return out

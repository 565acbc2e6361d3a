"""Saved agent runs -> `Trajectory`.

    read_mswea(path | dict | list)  a mini-swe-agent trajectory: format 1.1 (tool calls, or text actions),
                                    the older `mini-swe-agent-1` (```bash blocks), and the bare message list
                                    older `mini` versions saved
    read_mswea_batch(dir)           `mini-extra swebench` output: `<iid>/<iid>.traj.json` + `preds.json`
    read_terminus(dir)              a Terminal-Bench Terminus-1 trial: `agent-logs/episode-N/{prompt.txt,response.json}`
    read_atif(path | dict)          a harbor ATIF trajectory (Terminus 2, OpenHands, ...)
    read_trajectory(path)           any of the single-run formats, detected from the content
    read_runs(path)                 whatever a path holds: a batch dir, a trial dir, or one file

Every reader keeps the messages a model could be shown again (no `extra`, no `exit` message),
one `Step` per executed action with its observation and exit code (a reply the agent rejected as a
format error executes nothing, so it makes no step), the thought (`reasoning_content` included), the
exit status, the patch, and in `metadata["error"]` the error a run ended in. What real files contain
is tolerated (missing fields, numbers as content, extra keys); what is broken is a `UsageError`
naming the file, what was expected and where. Oddities that are not errors (an empty run) go to
`metadata["warnings"]`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tts.errors import UsageError
from tts.records import Message, Step, Trajectory

_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_OUTPUT = re.compile(r"<output>\n?(.*?)</output>", re.S)
_BASH_BLOCK = re.compile(r"```(?:bash|mswea_bash_command)\s*\n(.*?)\n```", re.S)
SUBMIT_MARKER = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
TRAJ_LAYOUTS = ("a mini-swe-agent batch dir (<iid>/<iid>.traj.json, preds.json), a Terminus-1 trial dir "
                "(agent-logs/episode-N/), or trajectory files (mini-swe-agent .traj.json, ATIF .json)")


def _bad(where: str, what: str, expected: str) -> UsageError:
    return UsageError(f"{where}: {what}; expected {expected}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _load_json(src: str | Path | dict[str, Any] | list[Any], expected: str = "a trajectory (a JSON object)"
               ) -> tuple[Any, str]:
    """The parsed JSON and the name to use in messages (the path)."""
    if isinstance(src, dict | list):
        return src, "trajectory"
    p = Path(src)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _bad(str(p), "not UTF-8 text", expected) from None
    if not text.strip():
        raise _bad(str(p), "the file is empty", expected)
    try:
        return json.loads(text), str(p)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated")
        raise _bad(str(p), f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}"
                           f"{'; the file looks cut short' if cut else ''})", expected) from None


def _text(content: Any) -> str:
    """Message content as text (OpenAI content parts joined; numbers as their text)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _content(content: Any) -> str | list[dict[str, Any]] | None:
    """Content a `Message` can hold (a list of parts stays a list only when every part is an object)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    return _text(content)


def _observation(msg: dict[str, Any]) -> tuple[str, int | None]:
    extra = msg.get("extra") if isinstance(msg.get("extra"), dict) else {}
    text = _text(msg.get("content"))
    code = extra.get("returncode")
    if not isinstance(code, int):
        m = _RETURNCODE.search(text)
        code = int(m.group(1)) if m else None
    raw = extra.get("raw_output")
    if raw is None:
        m = _OUTPUT.search(text)
        raw = m.group(1) if m else text
    return _text(raw), code


def _is_observation(msg: dict[str, Any], pending: list[Step]) -> bool:
    """A user message after text actions is their output, unless the agent rejected the reply (a format
    error: mini-swe-agent answers with instructions and runs nothing)."""
    extra = msg.get("extra") if isinstance(msg.get("extra"), dict) else {}
    if "returncode" in extra or "raw_output" in extra:
        return True
    if extra.get("interrupt_type") or "FormatError" in str(extra.get("exception_type", "")):
        return False
    text = _text(msg.get("content"))
    return bool(_RETURNCODE.search(text) or "<output>" in text) or any(SUBMIT_MARKER in s.action for s in pending)


def _thought(content: str, reasoning: Any = None) -> str:
    parts = [_text(reasoning).strip(), _BASH_BLOCK.sub("", content).strip()]
    return "\n\n".join(p for p in parts if p)


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _submission_of(output: str) -> str:
    """What a submit command printed, without the marker line."""
    lines = output.split("\n", 1)
    return lines[1] if lines[0].strip() == SUBMIT_MARKER else output


def read_mswea(src: str | Path | dict[str, Any] | list[Any], traj_id: str | None = None) -> Trajectory:
    data, name = _load_json(src, "a mini-swe-agent trajectory ({info, messages})")
    warnings: list[str] = []
    if isinstance(data, list):  # older `mini` saved the bare message list
        data = {"messages": data, "trajectory_format": "mini-swe-agent-list"}
    if not isinstance(data, dict):
        raise _bad(name, f"the JSON is {_kind(data)}", "a mini-swe-agent trajectory ({info, messages})")
    if "messages" not in data:
        raise _bad(name, "no 'messages'", "a mini-swe-agent trajectory ({info, messages})")
    raw = data["messages"]
    if not isinstance(raw, list):
        raise _bad(name, f"'messages' is {_kind(raw)}", "a list of {role, content} objects")
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise _bad(name, f"messages[{i}] is {_kind(m)}", "a {role, content} object")
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
                messages.append(Message(role="assistant", content=_text(extra["model_response"])))
        content = m.get("content")
        calls_raw = m.get("tool_calls") if isinstance(m.get("tool_calls"), list) else []
        call_id = m.get("tool_call_id")
        messages.append(Message(role=role, content=_content(content),
                                tool_calls=[c for c in calls_raw if isinstance(c, dict)] or None,
                                tool_call_id=None if call_id is None else str(call_id)))
        if role == "assistant":
            text = _text(content)
            reasoning = m.get("reasoning_content") or (m.get("provider_specific_fields") or {}).get("reasoning_content")
            calls = [c for c in calls_raw if isinstance(c, dict)]
            text_pending = []
            if calls:
                for i, call in enumerate(calls):
                    fn = call.get("function") or {}
                    try:
                        args = json.loads(fn.get("arguments") or "{}")
                    except (TypeError, ValueError):
                        args = {"command": _text(fn.get("arguments"))}
                    action = args.get("command", args) if isinstance(args, dict) else args
                    step = Step(thought=_thought(text, reasoning) if i == 0 else "", action=_text(action))
                    steps.append(step)
                    if call.get("id"):
                        by_call[str(call["id"])] = step
                    else:
                        unmatched.append(step)
            else:
                extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
                actions = [_text(a.get("command", "")) for a in extra.get("actions") or [] if isinstance(a, dict)] \
                    or _BASH_BLOCK.findall(text)
                for i, action in enumerate(actions):
                    step = Step(thought=_thought(text, reasoning) if i == 0 else "", action=action.strip())
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
        meta["error"] = _one_line(_text(error))
    if format_errors:
        meta["format_errors"] = format_errors
    if warnings:
        meta["warnings"] = warnings
    return Trajectory(id=traj_id or iid or "trajectory", task_id=iid, messages=messages, steps=steps,
                      outcome=exit_status, patch=_text(submission) or None, metadata=meta)


def _read_preds(path: Path) -> dict[str, dict[str, Any]]:
    """swebench predictions (a dict keyed by instance id, or a list), by instance id."""
    expected = "swebench predictions: {instance_id: {instance_id, model_name_or_path, model_patch}} or a list"
    data, name = _load_json(path, expected)
    rows = list(data.values()) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise _bad(name, f"the JSON is {_kind(data)}", expected)
    out: dict[str, dict[str, Any]] = {}
    keys = list(data) if isinstance(data, dict) else [None] * len(rows)
    for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
        if not isinstance(row, dict):
            raise _bad(name, f"entry {key or i} is {_kind(row)}", expected)
        iid = row.get("instance_id") or key
        if not iid:
            raise _bad(name, f"entry {i} has no instance_id", expected)
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
            traj = traj.model_copy(update={"patch": _text(pred["model_patch"])})
        out.append(traj)
    if not out:
        raise _layout_error(root)
    return out


def _layout_error(root: Path) -> UsageError:
    flat = sorted(root.glob("*.traj.json"))
    if flat:
        return UsageError(f"{root} holds {len(flat)} .traj.json files directly, not in <iid>/<iid>.traj.json "
                          f"folders; expected {TRAJ_LAYOUTS}: pass the files themselves "
                          f"(tts swe import {root}/*.traj.json ...)")
    return UsageError(f"{root}: no <iid>/<iid>.traj.json files and no agent-logs/episode-N directories; "
                      f"expected {TRAJ_LAYOUTS}")


def _episode_number(p: Path) -> int:
    m = re.search(r"(\d+)$", p.name)
    return int(m.group(1)) if m else -1


def _trial_logs(root: Path) -> Path | None:
    logs = root / "agent-logs" if (root / "agent-logs").is_dir() else root
    return logs if any(p.is_dir() for p in logs.glob("episode-*")) else None


def read_terminus(trial_dir: str | Path) -> Trajectory:
    """A Terminus-1 trial: each episode's `response.json` is one step; the next episode's
    `prompt.txt` is what the terminal showed after it."""
    root = Path(trial_dir)
    logs = _trial_logs(root) if root.is_dir() else None
    if logs is None:
        raise _layout_error(root) if root.is_dir() else UsageError(f"{root} is not a directory; "
                                                                    f"expected a Terminus-1 trial dir")
    episodes = sorted((p for p in logs.glob("episode-*") if p.is_dir()), key=_episode_number)
    expected = "a Terminus-1 response object {state_analysis, explanation, commands, is_task_complete}"
    messages: list[Message] = []
    steps: list[Step] = []
    complete = False
    for i, ep in enumerate(episodes):
        prompt = (ep / "prompt.txt").read_text(errors="replace") if (ep / "prompt.txt").is_file() else ""
        messages.append(Message(role="user", content=prompt))
        if i > 0 and steps:
            steps[-1].observation = prompt
        if not (ep / "response.json").is_file():
            continue
        resp, _ = _load_json(ep / "response.json", expected)
        if not isinstance(resp, dict):
            raise _bad(str(ep / "response.json"), f"the JSON is {_kind(resp)}", expected)
        messages.append(Message(role="assistant", content=(ep / "response.json").read_text()))
        cmds = resp.get("commands") if isinstance(resp.get("commands"), list) else []
        keys = [_text(c.get("keystrokes", "")) for c in cmds if isinstance(c, dict)]
        thought = "\n".join(_text(x) for x in (resp.get("state_analysis"), resp.get("explanation")) if x)
        steps.append(Step(thought=thought, action="".join(keys)))
        complete = bool(resp.get("is_task_complete"))
    meta: dict[str, Any] = {"format": "terminus-1"}
    results = root / "results.json"
    if results.is_file():
        res, name = _load_json(results, "a Terminal-Bench results object {task_id, is_resolved, ...}")
        if not isinstance(res, dict):
            raise _bad(name, f"the JSON is {_kind(res)}", "a Terminal-Bench results object {task_id, is_resolved}")
        meta["is_resolved"] = res.get("is_resolved")
        meta["task_id"] = res.get("task_id")
        failure = res.get("failure_mode")
        if failure and str(failure).lower() not in ("unset", "none"):
            meta["error"] = f"failure_mode {failure}"
    return Trajectory(id=root.name, task_id=meta.get("task_id") or root.name, messages=messages, steps=steps,
                      outcome="Submitted" if complete else "Incomplete", metadata=meta)


def _atif_instruction(steps: list[dict[str, Any]]) -> str:
    """The task as the user gave it (Terminus 2 embeds it in its prompt after 'Task Description:')."""
    first = next((_text(s.get("message")) for s in steps if s.get("source") == "user" and s.get("message")), "")
    m = re.search(r"Task Description:\s*\n(.*?)(?:\n\s*\nCurrent terminal state|\Z)", first, re.S)
    return (m.group(1) if m else first).strip()


def _atif_task_id(data: dict[str, Any], steps: list[dict[str, Any]], path: Path | None) -> str | None:
    """The real task name: a field of the file, harbor's trial `result.json` (`<trial>/agent/trajectory.json`
    next to `<trial>/result.json`), else a stable id from the instruction. Never the session id (a UUID
    per run in harbor), which would keep the rollouts of one task apart."""
    extra = data.get("extra") if isinstance(data.get("extra"), dict) else {}
    for value in (data.get("task_id"), data.get("task_name"), extra.get("task_id"), extra.get("task_name")):
        if value:
            return str(value)
    if path is not None:
        for trial in (path.parent.parent, path.parent) if path.parent.name == "agent" else (path.parent,):
            res = trial / "result.json"
            if res.is_file():
                try:
                    name = json.loads(res.read_text()).get("task_name")
                except (ValueError, AttributeError, OSError):
                    name = None
                if name:
                    return str(name)
    instruction = _atif_instruction(steps)
    if instruction:
        return "task-" + hashlib.sha256(instruction.encode()).hexdigest()[:12]
    return None


def read_atif(src: str | Path | dict[str, Any], traj_id: str | None = None) -> Trajectory:
    """A harbor ATIF trajectory: `steps[{source, message, reasoning_content, tool_calls, observation}]`.
    Observations are matched to tool calls by `source_call_id`, or by position when it is absent."""
    expected = "an ATIF trajectory {schema_version, agent, steps: [...]}"
    data, name = _load_json(src, expected)
    if not isinstance(data, dict):
        raise _bad(name, f"the JSON is {_kind(data)}", expected)
    if "steps" not in data:
        raise _bad(name, "no 'steps'", expected)
    if not isinstance(data["steps"], list):
        raise _bad(name, f"'steps' is {_kind(data['steps'])}", "a list of step objects")
    raw_steps = data["steps"]
    for i, s in enumerate(raw_steps):
        if not isinstance(s, dict):
            raise _bad(name, f"steps[{i}] is {_kind(s)}", "a step object {source, message, ...}")
    role_of = {"system": "system", "user": "user", "agent": "assistant"}
    messages: list[Message] = []
    steps: list[Step] = []
    for s in raw_steps:
        role = role_of.get(s.get("source", ""), "user")
        if s.get("message"):
            messages.append(Message(role=role, content=_text(s.get("message"))))
        if role != "assistant":
            continue
        obs = s.get("observation") if isinstance(s.get("observation"), dict) else {}
        results = [r for r in obs.get("results") or [] if isinstance(r, dict) and "content" in r]
        by_id = {r["source_call_id"]: _text(r.get("content")) for r in results if r.get("source_call_id")}
        by_pos = [_text(r.get("content")) for r in results if not r.get("source_call_id")]
        thought = _thought(_text(s.get("message")), s.get("reasoning_content"))
        calls = [c for c in s.get("tool_calls") or [] if isinstance(c, dict)]
        for i, call in enumerate(calls):
            args = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
            action = args.get("keystrokes") or args.get("command") or json.dumps(args)
            out = by_id.pop(call.get("tool_call_id"), None)
            if out is None and by_pos:
                out = by_pos.pop(0)
            steps.append(Step(thought=thought if i == 0 else "",
                              action=f"{call.get('function_name', '')}: {_text(action)}".strip(": "),
                              observation=out or ""))
        if not calls and results:  # a reply that ran nothing (e.g. unparseable): what the harness said back
            steps.append(Step(thought=thought, observation="\n".join(_text(r.get("content")) for r in results)))
    agent = data.get("agent") if isinstance(data.get("agent"), dict) else {}
    fm = data.get("final_metrics") if isinstance(data.get("final_metrics"), dict) else {}
    extra = data.get("extra") if isinstance(data.get("extra"), dict) else {}
    path = Path(src) if isinstance(src, str | Path) else None
    stem = path.name.split(".")[0] if path is not None else None
    meta: dict[str, Any] = {"format": data.get("schema_version", "ATIF"), "model": agent.get("model_name"),
                            "agent": agent.get("name"), "cost_usd": fm.get("total_cost_usd"),
                            "prompt_tokens": fm.get("total_prompt_tokens"),
                            "completion_tokens": fm.get("total_completion_tokens"),
                            "session_id": data.get("session_id")}
    if extra.get("error") or extra.get("exception"):
        meta["error"] = _one_line(_text(extra.get("error") or extra.get("exception")))
    if not raw_steps:
        meta["warnings"] = [f"{name}: no steps (an empty run)"]
    return Trajectory(
        id=traj_id or data.get("session_id") or stem or "trajectory",
        task_id=_atif_task_id(data, raw_steps, path), messages=messages, steps=steps,
        outcome=extra.get("exit_status"), metadata=meta,
    )


def read_trajectory(path: str | Path) -> Trajectory:
    """One saved run in any supported format (a Terminus trial is a directory)."""
    p = Path(path)
    if p.is_dir():
        return read_terminus(p)
    expected = ("a mini-swe-agent trajectory (info, messages), an ATIF trajectory (schema_version, steps) "
                "or a tts Trajectory (format_version, id)")
    data, _ = _load_json(p, expected)
    stem = p.name.split(".")[0]
    if isinstance(data, list):
        return read_mswea(p, traj_id=stem)
    if not isinstance(data, dict):
        raise _bad(str(p), f"the JSON is {_kind(data)}", expected)
    if "steps" in data and ("schema_version" in data or "agent" in data):
        return read_atif(p, traj_id=stem)
    if "format_version" in data and "id" in data:
        try:
            return Trajectory.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise _bad(str(p), f"not a valid tts Trajectory ({first[1] if len(first) > 1 else exc})",
                       expected) from None
    if str(data.get("trajectory_format", "")).startswith("mini-swe-agent") or "messages" in data:
        return read_mswea(p, traj_id=data.get("instance_id") or stem)
    keys = ", ".join(sorted(map(str, data))[:8]) or "none"
    raise _bad(str(p), f"unknown trajectory format (top-level keys: {keys})", expected)


def read_runs(path: str | Path) -> list[Trajectory]:
    """Every run a path holds: a mini-swe-agent batch dir, a Terminus-1 trial dir, or one trajectory file."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p} does not exist; expected {TRAJ_LAYOUTS}")
    if p.is_dir():
        if any(p.glob("*/*.traj.json")):
            return read_mswea_batch(p)
        if _trial_logs(p) is not None:
            return [read_terminus(p)]
        raise _layout_error(p)
    return [read_trajectory(p)]

"""Saved agent runs -> `Trajectory`.

    read_mswea(path | dict)      a mini-swe-agent trajectory: format 1.1 (tool calls, or text actions)
                                 and the older `mini-swe-agent-1` (```bash blocks)
    read_mswea_batch(dir)        `mini-extra swebench` output: `<iid>/<iid>.traj.json` + `preds.json`
    read_terminus(dir)           a Terminal-Bench Terminus-1 trial: `agent-logs/episode-N/{prompt.txt,response.json}`
    read_atif(path | dict)       a harbor ATIF trajectory (Terminus 2)
    read_trajectory(path)        any of the single-run formats, detected from the content

Every reader keeps the messages a model could be shown again (no `extra`, no `exit` message),
one `Step` per action with its observation and exit code, the exit status and the patch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tts.errors import UsageError
from tts.records import Message, Step, Trajectory

_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_OUTPUT = re.compile(r"<output>\n?(.*?)</output>", re.S)
_BASH_BLOCK = re.compile(r"```(?:bash|mswea_bash_command)\s*\n(.*?)\n```", re.S)


def _load_json(src: str | Path | dict[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(src, dict):
        return src, ""
    p = Path(src)
    try:
        return json.loads(p.read_text(encoding="utf-8")), p.name
    except OSError as exc:
        raise UsageError(f"cannot read trajectory {p}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"trajectory {p} is not valid JSON ({exc})") from None


def _text(content: Any) -> str:
    """Message content as text (OpenAI content parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _observation(msg: dict[str, Any]) -> tuple[str, int | None]:
    extra = msg.get("extra") or {}
    text = _text(msg.get("content"))
    code = extra.get("returncode")
    if code is None:
        m = _RETURNCODE.search(text)
        code = int(m.group(1)) if m else None
    raw = extra.get("raw_output")
    if raw is None:
        m = _OUTPUT.search(text)
        raw = m.group(1) if m else text
    return str(raw), code


def _thought(content: str) -> str:
    return _BASH_BLOCK.sub("", content).strip()


def read_mswea(src: str | Path | dict[str, Any], traj_id: str | None = None) -> Trajectory:
    data, name = _load_json(src)
    if "messages" not in data:
        raise UsageError(f"{name or 'trajectory'}: not a mini-swe-agent trajectory (no 'messages')")
    info = data.get("info") or {}
    raw = [m for m in data["messages"] if isinstance(m, dict)]
    messages: list[Message] = []
    steps: list[Step] = []
    pending: dict[str, Step] = {}  # tool_call_id -> its step, filled when the tool message arrives
    last_text_step: Step | None = None
    exit_status = info.get("exit_status") or None
    submission = info.get("submission")
    for m in raw:
        role = m.get("role")
        if role == "exit":
            extra = m.get("extra") or {}
            exit_status = exit_status or extra.get("exit_status")
            if submission in (None, ""):
                submission = extra.get("submission")
            continue
        if role not in ("system", "user", "assistant", "tool"):
            continue
        content = m.get("content")
        messages.append(Message(role=role, content=content if isinstance(content, str | list) or content is None
                                else str(content), tool_calls=m.get("tool_calls"), tool_call_id=m.get("tool_call_id")))
        if role == "assistant":
            text = _text(content)
            calls = m.get("tool_calls") or []
            if calls:
                for i, call in enumerate(calls):
                    fn = call.get("function") or {}
                    try:
                        args = json.loads(fn.get("arguments") or "{}")
                    except ValueError:
                        args = {"command": fn.get("arguments", "")}
                    step = Step(thought=text if i == 0 else "", action=str(args.get("command", args)))
                    steps.append(step)
                    pending[call.get("id", f"call{len(steps)}")] = step
                last_text_step = None
            else:
                actions = [a.get("command", "") for a in (m.get("extra") or {}).get("actions", [])] \
                    or _BASH_BLOCK.findall(text)
                last_text_step = None
                for i, action in enumerate(actions):
                    step = Step(thought=_thought(text) if i == 0 else "", action=action.strip())
                    steps.append(step)
                    last_text_step = step
        elif role == "tool":
            step = pending.pop(m.get("tool_call_id", ""), None)
            if step is not None:
                step.observation, step.exit_code = _observation(m)
        elif role == "user" and last_text_step is not None and len(messages) > 2:
            last_text_step.observation, last_text_step.exit_code = _observation(m)
            last_text_step = None
    stats = info.get("model_stats") or {}
    iid = data.get("instance_id") or traj_id or (name.split(".")[0] if name else None)
    return Trajectory(
        id=traj_id or iid or "trajectory",
        task_id=iid,
        messages=messages,
        steps=steps,
        outcome=exit_status,
        patch=submission or None,
        metadata={"format": data.get("trajectory_format", "mini-swe-agent-1"),
                  "cost_usd": stats.get("instance_cost"), "api_calls": stats.get("api_calls"),
                  "model": ((info.get("config") or {}).get("model") or {}).get("model_name")},
    )


def read_mswea_batch(out_dir: str | Path) -> list[Trajectory]:
    """Every `<iid>/<iid>.traj.json` under a batch output dir; the patch from `preds.json` when present."""
    root = Path(out_dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory of mini-swe-agent output")
    preds: dict[str, Any] = {}
    if (root / "preds.json").is_file():
        preds = json.loads((root / "preds.json").read_text())
    out = []
    for path in sorted(root.glob("*/*.traj.json")):
        iid = path.parent.name
        traj = read_mswea(path, traj_id=iid)
        traj = traj.model_copy(update={"task_id": iid})
        pred = preds.get(iid)
        if pred is not None and pred.get("model_patch"):
            traj = traj.model_copy(update={"patch": pred["model_patch"]})
        out.append(traj)
    if not out:
        raise UsageError(f"no <instance_id>/<instance_id>.traj.json files under {root}")
    return out


def _episode_number(p: Path) -> int:
    m = re.search(r"(\d+)$", p.name)
    return int(m.group(1)) if m else -1


def read_terminus(trial_dir: str | Path) -> Trajectory:
    """A Terminus-1 trial: each episode's `response.json` is one step; the next episode's
    `prompt.txt` is what the terminal showed after it."""
    root = Path(trial_dir)
    logs = root / "agent-logs" if (root / "agent-logs").is_dir() else root
    episodes = sorted((p for p in logs.glob("episode-*") if p.is_dir()), key=_episode_number)
    if not episodes:
        raise UsageError(f"no agent-logs/episode-N directories under {root}")
    messages: list[Message] = []
    steps: list[Step] = []
    complete = False
    for i, ep in enumerate(episodes):
        prompt = (ep / "prompt.txt").read_text() if (ep / "prompt.txt").is_file() else ""
        messages.append(Message(role="user", content=prompt))
        if i > 0 and steps:
            steps[-1].observation = prompt
        if not (ep / "response.json").is_file():
            continue
        raw = (ep / "response.json").read_text()
        messages.append(Message(role="assistant", content=raw))
        try:
            resp = json.loads(raw)
        except ValueError:
            steps.append(Step(thought=raw[:2000]))
            continue
        keys = [c.get("keystrokes", "") for c in resp.get("commands") or []]
        thought = "\n".join(x for x in (resp.get("state_analysis"), resp.get("explanation")) if x)
        steps.append(Step(thought=thought, action="".join(keys)))
        complete = bool(resp.get("is_task_complete"))
    meta: dict[str, Any] = {"format": "terminus-1"}
    results = root / "results.json"
    if results.is_file():
        res = json.loads(results.read_text())
        meta["is_resolved"] = res.get("is_resolved")
        meta["task_id"] = res.get("task_id")
    return Trajectory(id=root.name, task_id=meta.get("task_id") or root.name, messages=messages, steps=steps,
                      outcome="Submitted" if complete else "Incomplete", metadata=meta)


def read_atif(src: str | Path | dict[str, Any], traj_id: str | None = None) -> Trajectory:
    """A harbor ATIF trajectory: `steps[{source, message, tool_calls, observation}]`."""
    data, name = _load_json(src)
    if "steps" not in data:
        raise UsageError(f"{name or 'trajectory'}: not an ATIF trajectory (no 'steps')")
    role_of = {"system": "system", "user": "user", "agent": "assistant"}
    messages: list[Message] = []
    steps: list[Step] = []
    for s in data["steps"]:
        role = role_of.get(s.get("source", ""), "user")
        if s.get("message"):
            messages.append(Message(role=role, content=_text(s.get("message"))))
        if role != "assistant":
            continue
        observed = (s.get("observation") or {}).get("results", [])
        results = {r.get("source_call_id"): _text(r.get("content")) for r in observed}
        calls = s.get("tool_calls") or []
        for i, call in enumerate(calls):
            args = call.get("arguments") or {}
            action = args.get("keystrokes") or args.get("command") or json.dumps(args)
            obs = results.get(call.get("tool_call_id"), "")
            steps.append(Step(thought=_text(s.get("message")) if i == 0 else "",
                              action=f"{call.get('function_name', '')}: {action}".strip(": "), observation=obs))
        if not calls and results:
            steps.append(Step(thought=_text(s.get("message")), observation="\n".join(results.values())))
    agent = data.get("agent") or {}
    fm = data.get("final_metrics") or {}
    return Trajectory(
        id=traj_id or data.get("session_id") or (name.split(".")[0] if name else "trajectory"),
        task_id=data.get("task_id") or data.get("session_id"),
        messages=messages, steps=steps,
        outcome=(data.get("extra") or {}).get("exit_status"),
        metadata={"format": data.get("schema_version", "ATIF"), "model": agent.get("model_name"),
                  "agent": agent.get("name"), "cost_usd": fm.get("total_cost_usd"),
                  "prompt_tokens": fm.get("total_prompt_tokens"),
                  "completion_tokens": fm.get("total_completion_tokens")},
    )


def read_trajectory(path: str | Path) -> Trajectory:
    """One saved run in any supported format (a Terminus trial is a directory)."""
    p = Path(path)
    if p.is_dir():
        return read_terminus(p)
    data, _ = _load_json(p)
    if "schema_version" in data and "steps" in data:
        return read_atif(data, traj_id=p.name.split(".")[0])
    if "format_version" in data and "id" in data:
        return Trajectory.model_validate(data)
    if data.get("trajectory_format", "").startswith("mini-swe-agent") or "messages" in data:
        return read_mswea(data, traj_id=data.get("instance_id") or p.name.split(".")[0])
    raise UsageError(f"{p}: unknown trajectory format (expected mini-swe-agent, ATIF, or a tts Trajectory)")

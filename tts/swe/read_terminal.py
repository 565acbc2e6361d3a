"""Terminal-Bench runs: a Terminus-1 trial dir (`agent-logs/episode-N/`) and a harbor ATIF trajectory."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tts.errors import UsageError
from tts.records import Message, Step, Trajectory
from tts.swe.read_common import as_text, bad_input, kind_of, layout_error, load_json, one_line_text, thought_of


def _episode_number(p: Path) -> int:
    m = re.search(r"(\d+)$", p.name)
    return int(m.group(1)) if m else -1


def trial_logs(root: Path) -> Path | None:
    logs = root / "agent-logs" if (root / "agent-logs").is_dir() else root
    return logs if any(p.is_dir() for p in logs.glob("episode-*")) else None


def read_terminus(trial_dir: str | Path) -> Trajectory:
    """A Terminus-1 trial: each episode's `response.json` is one step; the next episode's
    `prompt.txt` is what the terminal showed after it."""
    root = Path(trial_dir)
    logs = trial_logs(root) if root.is_dir() else None
    if logs is None:
        raise layout_error(root) if root.is_dir() else UsageError(f"{root} is not a directory; "
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
        resp, _ = load_json(ep / "response.json", expected)
        if not isinstance(resp, dict):
            raise bad_input(str(ep / "response.json"), f"the JSON is {kind_of(resp)}", expected)
        messages.append(Message(role="assistant", content=(ep / "response.json").read_text()))
        cmds = resp.get("commands") if isinstance(resp.get("commands"), list) else []
        keys = [as_text(c.get("keystrokes", "")) for c in cmds if isinstance(c, dict)]
        thought = "\n".join(as_text(x) for x in (resp.get("state_analysis"), resp.get("explanation")) if x)
        steps.append(Step(thought=thought, action="".join(keys)))
        complete = bool(resp.get("is_task_complete"))
    meta: dict[str, Any] = {"format": "terminus-1"}
    results = root / "results.json"
    if results.is_file():
        res, name = load_json(results, "a Terminal-Bench results object {task_id, is_resolved, ...}")
        if not isinstance(res, dict):
            raise bad_input(name, f"the JSON is {kind_of(res)}",
                            "a Terminal-Bench results object {task_id, is_resolved}")
        meta["is_resolved"] = res.get("is_resolved")
        meta["task_id"] = res.get("task_id")
        failure = res.get("failure_mode")
        if failure and str(failure).lower() not in ("unset", "none"):
            meta["error"] = f"failure_mode {failure}"
    return Trajectory(id=root.name, task_id=meta.get("task_id") or root.name, messages=messages, steps=steps,
                      outcome="Submitted" if complete else "Incomplete", metadata=meta)


def _atif_instruction(steps: list[dict[str, Any]]) -> str:
    """The task as the user gave it (Terminus 2 embeds it in its prompt after 'Task Description:')."""
    first = next((as_text(s.get("message")) for s in steps if s.get("source") == "user" and s.get("message")), "")
    m = re.search(r"Task Description:\s*\n(.*?)(?:\n\s*\nCurrent terminal state|\Z)", first, re.S)
    return (m.group(1) if m else first).strip()


def atif_task_id(data: dict[str, Any], path: Path | None = None, traj_id: str | None = None) -> str:
    """The instance an ATIF trajectory is a rollout of: the one id `tts swe import` names its rollout
    folder and its `instances.jsonl` row by (through `tts.swe.importing.instance_id`). A field of the file
    (`task_id`/`task_name`, also under `extra`), harbor's trial `result.json` (`<trial>/agent/trajectory.json`
    next to `<trial>/result.json`), else a stable id from the instruction; with no instruction, the run's own
    name (`traj_id`, the file name, harbor's trial dir) or a hash of its steps. Never the session id: a UUID
    per run in harbor (it would keep the rollouts of one task apart) or a placeholder shared by unrelated
    files (`NORMALIZED_SESSION_ID` in harbor's golden trajectories, which would lump them together)."""
    extra = data.get("extra") if isinstance(data.get("extra"), dict) else {}
    for value in (data.get("task_id"), data.get("task_name"), extra.get("task_id"), extra.get("task_name")):
        if value:
            return str(value)
    in_trial = path is not None and path.parent.name == "agent"
    if path is not None:
        for trial in (path.parent.parent, path.parent) if in_trial else (path.parent,):
            res = trial / "result.json"
            if res.is_file():
                try:
                    name = json.loads(res.read_text()).get("task_name")
                except (ValueError, AttributeError, OSError):
                    name = None
                if name:
                    return str(name)
    steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    instruction = _atif_instruction([s for s in steps if isinstance(s, dict)])
    if instruction:
        return "task-" + hashlib.sha256(instruction.encode()).hexdigest()[:12]
    if traj_id:
        return traj_id
    if path is not None:
        return path.parent.parent.name if in_trial else path.name.split(".")[0]
    return "task-" + hashlib.sha256(json.dumps(steps, sort_keys=True, default=str).encode()).hexdigest()[:12]


def read_atif(src: str | Path | dict[str, Any], traj_id: str | None = None) -> Trajectory:
    """A harbor ATIF trajectory: `steps[{source, message, reasoning_content, tool_calls, observation}]`.
    Observations are matched to tool calls by `source_call_id`, or by position when it is absent."""
    expected = "an ATIF trajectory {schema_version, agent, steps: [...]}"
    data, name = load_json(src, expected)
    if not isinstance(data, dict):
        raise bad_input(name, f"the JSON is {kind_of(data)}", expected)
    if "steps" not in data:
        raise bad_input(name, "no 'steps'", expected)
    if not isinstance(data["steps"], list):
        raise bad_input(name, f"'steps' is {kind_of(data['steps'])}", "a list of step objects")
    raw_steps = data["steps"]
    for i, s in enumerate(raw_steps):
        if not isinstance(s, dict):
            raise bad_input(name, f"steps[{i}] is {kind_of(s)}", "a step object {source, message, ...}")
    role_of = {"system": "system", "user": "user", "agent": "assistant"}
    messages: list[Message] = []
    steps: list[Step] = []
    for s in raw_steps:
        role = role_of.get(s.get("source", ""), "user")
        if s.get("message"):
            messages.append(Message(role=role, content=as_text(s.get("message"))))
        if role != "assistant":
            continue
        obs = s.get("observation") if isinstance(s.get("observation"), dict) else {}
        results = [r for r in obs.get("results") or [] if isinstance(r, dict) and "content" in r]
        by_id = {r["source_call_id"]: as_text(r.get("content")) for r in results if r.get("source_call_id")}
        by_pos = [as_text(r.get("content")) for r in results if not r.get("source_call_id")]
        thought = thought_of(as_text(s.get("message")), s.get("reasoning_content"))
        calls = [c for c in s.get("tool_calls") or [] if isinstance(c, dict)]
        for i, call in enumerate(calls):
            args = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
            action = args.get("keystrokes") or args.get("command") or json.dumps(args)
            out = by_id.pop(call.get("tool_call_id"), None)
            if out is None and by_pos:
                out = by_pos.pop(0)
            steps.append(Step(thought=thought if i == 0 else "",
                              action=f"{call.get('function_name', '')}: {as_text(action)}".strip(": "),
                              observation=out or ""))
        if not calls and results:  # a reply that ran nothing (e.g. unparseable): what the harness said back
            steps.append(Step(thought=thought, observation="\n".join(as_text(r.get("content")) for r in results)))
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
        meta["error"] = one_line_text(as_text(extra.get("error") or extra.get("exception")))
    if not raw_steps:
        meta["warnings"] = [f"{name}: no steps (an empty run)"]
    return Trajectory(
        id=traj_id or data.get("session_id") or stem or "trajectory",
        task_id=atif_task_id(data, path, traj_id), messages=messages, steps=steps,
        outcome=extra.get("exit_status"), metadata=meta,
    )

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

from pathlib import Path

from tts.errors import UsageError
from tts.records import Trajectory
from tts.swe.read_common import TRAJ_LAYOUTS, bad_input, kind_of, layout_error, load_json
from tts.swe.read_mswea import SUBMIT_MARKER, read_mswea, read_mswea_batch
from tts.swe.read_terminal import read_atif, read_terminus, trial_logs

__all__ = ["SUBMIT_MARKER", "TRAJ_LAYOUTS", "read_atif", "read_mswea", "read_mswea_batch", "read_runs", "read_terminus",
           "read_trajectory"]

def read_trajectory(path: str | Path) -> Trajectory:
    """One saved run in any supported format (a Terminus trial is a directory)."""
    p = Path(path)
    if p.is_dir():
        return read_terminus(p)
    expected = ("a mini-swe-agent trajectory (info, messages), an ATIF trajectory (schema_version, steps) "
                "or a tts Trajectory (format_version, id)")
    data, _ = load_json(p, expected)
    stem = p.name.split(".")[0]
    if isinstance(data, list):
        return read_mswea(p, traj_id=stem)
    if not isinstance(data, dict):
        raise bad_input(str(p), f"the JSON is {kind_of(data)}", expected)
    if "steps" in data and ("schema_version" in data or "agent" in data):
        return read_atif(p, traj_id=stem)
    if "format_version" in data and "id" in data:
        try:
            return Trajectory.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise bad_input(str(p), f"not a valid tts Trajectory ({first[1] if len(first) > 1 else exc})",
                       expected) from None
    if str(data.get("trajectory_format", "")).startswith("mini-swe-agent") or "messages" in data:
        return read_mswea(p, traj_id=data.get("instance_id") or stem)
    keys = ", ".join(sorted(map(str, data))[:8]) or "none"
    raise bad_input(str(p), f"unknown trajectory format (top-level keys: {keys})", expected)


def read_runs(path: str | Path) -> list[Trajectory]:
    """Every run a path holds: a mini-swe-agent batch dir, a Terminus-1 trial dir, or one trajectory file."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p} does not exist; expected {TRAJ_LAYOUTS}")
    if p.is_dir():
        if any(p.glob("*/*.traj.json")):
            return read_mswea_batch(p)
        if trial_logs(p) is not None:
            return [read_terminus(p)]
        raise layout_error(p)
    return [read_trajectory(p)]

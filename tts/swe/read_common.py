"""What every saved-run reader shares: JSON loading with one-line errors, message content as text."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tts.errors import UsageError

TRAJ_LAYOUTS = ("a mini-swe-agent batch dir (<iid>/<iid>.traj.json, preds.json), a Terminus-1 trial dir "
                "(agent-logs/episode-N/), or trajectory files (mini-swe-agent .traj.json, ATIF .json)")
BASH_BLOCK = re.compile(r"```(?:bash|mswea_bash_command)\s*\n(.*?)\n```", re.S)


def bad_input(where: str, what: str, expected: str) -> UsageError:
    return UsageError(f"{where}: {what}; expected {expected}")


def kind_of(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def load_json(src: str | Path | dict[str, Any] | list[Any], expected: str = "a trajectory (a JSON object)"
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
        raise bad_input(str(p), "not UTF-8 text", expected) from None
    if not text.strip():
        raise bad_input(str(p), "the file is empty", expected)
    try:
        return json.loads(text), str(p)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated")
        raise bad_input(str(p), f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}"
                           f"{'; the file looks cut short' if cut else ''})", expected) from None


def as_text(content: Any) -> str:
    """Message content as text (OpenAI content parts joined; numbers as their text)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def as_content(content: Any) -> str | list[dict[str, Any]] | None:
    """Content a `Message` can hold (a list of parts stays a list only when every part is an object)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    return as_text(content)


def thought_of(content: str, reasoning: Any = None) -> str:
    parts = [as_text(reasoning).strip(), BASH_BLOCK.sub("", content).strip()]
    return "\n\n".join(p for p in parts if p)


def one_line_text(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def layout_error(root: Path) -> UsageError:
    flat = sorted(root.glob("*.traj.json"))
    if flat:
        return UsageError(f"{root} holds {len(flat)} .traj.json files directly, not in <iid>/<iid>.traj.json "
                          f"folders; expected {TRAJ_LAYOUTS}: pass the files themselves "
                          f"(tts swe import {root}/*.traj.json ...)")
    return UsageError(f"{root}: no <iid>/<iid>.traj.json files and no agent-logs/episode-N directories; "
                      f"expected {TRAJ_LAYOUTS}")

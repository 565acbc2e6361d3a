"""Answers that are tool calls: their canonical form for voting and their rendering for judges.

Two samples that call the same function with the same arguments agree, however the arguments
were spaced or ordered, so self-consistency votes on the call itself: the key is the function
name and the parsed JSON arguments (keys sorted), one entry per call, parallel calls in sorted
order. Arguments that are not valid JSON are compared as the raw string.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def parse_arguments(raw: Any) -> Any:
    """A tool call's `arguments` (a JSON string on the wire) as data; the raw string if it is not JSON."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _function(call: Any) -> tuple[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict):  # not an OpenAI function call: compare the whole object
        return str(call.get("type", "call") if isinstance(call, dict) else "call"), call
    return str(fn.get("name") or ""), parse_arguments(fn.get("arguments"))


def call_key(call: Any) -> str:
    """One call as `name({"arg": value})`, with the arguments in canonical JSON."""
    name, args = _function(call)
    return f"{name}({json.dumps(args, sort_keys=True, separators=(',', ':'), ensure_ascii=False)})"


def tool_calls_key(tool_calls: Sequence[Any]) -> str:
    """The canonical answer of a reply that makes these calls: what votes are counted on."""
    return "; ".join(sorted(call_key(c) for c in tool_calls))


def render_tool_calls(content: str | None, tool_calls: Sequence[Any]) -> str:
    """The reply as a judge reads it: its text, then each call with its arguments."""
    lines = [content.strip()] if content and content.strip() else []
    for call in tool_calls:
        name, args = _function(call)
        shown = args if isinstance(args, str) else json.dumps(args, sort_keys=True, ensure_ascii=False)
        lines.append(f"[tool call] {name}({shown})")
    return "\n".join(lines)

"""Answers that are tool calls: their canonical form for voting and their rendering for judges.

Two samples that call the same function with the same arguments agree, however the arguments
were spaced or ordered, so self-consistency votes on the call itself: the key is the function
name and the parsed JSON arguments (keys sorted), one entry per call, parallel calls in sorted
order. Arguments that are not valid JSON are compared as the raw string.

Also the agent turn a task may carry (tools, tool choice, response format): its validation and
the parameters every call that answers the task gets (`turn_params`); and structured (JSON)
answers in canonical form (`json_key`).
"""

from __future__ import annotations

import json
import re
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


# -- the agent turn: a task's tools, tool choice and response format ---------------------------------
_CHOICES = ("auto", "none", "required")
_FORMATS = ("text", "json_object", "json_schema")


def check_turn(task: Any) -> None:
    """Validate a task's turn fields (ValueError naming the field, as pydantic reports it)."""
    names: set[str] = set()
    for i, tool in enumerate(task.tools or []):
        if not isinstance(tool, dict):
            raise ValueError(f"tools[{i}] must be an object")
        if tool.get("type", "function") == "function":
            fn = tool.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise ValueError(f"tools[{i}] must be a function tool: {{\"type\": \"function\", \"function\": "
                                 f"{{\"name\": ..., \"parameters\": {{...}}}}}}")
            names.add(fn["name"])
    choice = task.tool_choice
    if choice is not None:
        if not task.tools:
            raise ValueError("'tool_choice' needs 'tools'")
        if isinstance(choice, str) and choice not in _CHOICES:
            raise ValueError(f"'tool_choice' must be one of {', '.join(_CHOICES)} or a function, got {choice!r}")
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
            if name not in names:
                raise ValueError(f"'tool_choice' names {name!r}, which is not one of the tools "
                                 f"({', '.join(sorted(names)) or 'none'})")
    fmt = task.response_format
    if fmt is not None:
        if fmt.get("type") not in _FORMATS:
            raise ValueError(f"'response_format.type' must be one of {', '.join(_FORMATS)}, got {fmt.get('type')!r}")
        if fmt["type"] == "json_schema" and not isinstance(fmt.get("json_schema"), dict):
            raise ValueError("'response_format' of type json_schema needs a 'json_schema' object "
                             "({\"name\": ..., \"schema\": {...}})")
    for i, m in enumerate(task.messages or []):
        if m.role == "tool" and not m.tool_call_id:
            raise ValueError(f"messages[{i}]: a tool result needs 'tool_call_id'")


def wants_json(task: Any) -> bool:
    return (task.response_format or {}).get("type") in ("json_object", "json_schema")


def turn_params(task: Any, client: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The call parameters every answering call of `task` carries (ChatRequest fields, the rest in
    `extra`): its tools, tool choice and response format, and a client's own parameters (`tts
    serve`: temperature, top_p, ...), which win over a strategy's. None when there are none."""
    params: dict[str, Any] = dict(client or {})
    extra = dict(params.pop("extra", {}))
    if task.tools:
        params["tools"] = task.tools
    if task.tool_choice is not None:
        extra["tool_choice"] = task.tool_choice
    if task.response_format is not None:
        extra["response_format"] = task.response_format
    if extra:
        params["extra"] = extra
    return params or None


def under_turn(params: dict[str, Any], turn: dict[str, Any]) -> dict[str, Any]:
    """A call's own parameters under the task's turn: the turn's fields win, `extra` is merged
    (idempotent: `sample` applies it, then `complete` again)."""
    out = {**params, **turn}
    if "extra" in params or "extra" in turn:
        out["extra"] = {**params.get("extra", {}), **turn.get("extra", {})}
    return out


def text_only(task: Any, strategy: str, instead: str) -> None:
    """For a strategy that grades and reasons over text: a clear ConfigError when `task` is an agent
    turn (tools, or a JSON answer it cannot honour), naming what to use instead."""
    from tts.errors import ConfigError

    what = "tools" if task.tools else "a JSON response format" if wants_json(task) else None
    if what is not None:
        raise ConfigError(f"{strategy} answers in text only and cannot honour the task's {what}; "
                          f"use {instead} for a tool-calling or structured-output turn")


_FENCE = re.compile(r"^```(?:json)?\s*\n(.*?)\n?```$", re.S)


def json_key(text: str) -> str | None:
    """A reply that is a JSON object or array (optionally in a ```json fence) in canonical form
    (parsed, keys sorted), so two structured answers that say the same agree; else None."""
    s = text.strip()
    fenced = _FENCE.match(s)
    if fenced:
        s = fenced.group(1).strip()
    if not s or s[0] not in "{[":
        return None
    try:
        value = json.loads(s)
    except ValueError:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False)

"""Responses API tools <-> chat function tools, and chat tool calls -> Responses output items.

`function` tools go upstream as chat functions; a `namespace` group's functions as
`<namespace>__<name>` (a call comes back with `namespace` and the bare `name`); a `custom`
(freeform) tool as a function taking one string `input` (its grammar, if any, in the
description; a call comes back as a `custom_tool_call` with that `input`). Built-in tools that
only OpenAI's servers run are not sent upstream: their types are returned for the `tts` object.
"""

from __future__ import annotations

import json
from typing import Any

from tts.errors import RequestError
from tts.serve.wire import arguments_object

NS_SEP = "__"
_BUILTIN = ("web_search", "web_search_preview", "file_search", "computer_use_preview", "computer", "code_interpreter",
            "image_generation", "mcp", "local_shell", "shell", "apply_patch", "tool_search")


def chat_tools(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        raise RequestError("'tools' must be a list of tools", param="tools")
    tools: list[dict[str, Any]] = []
    builtin: list[str] = []
    for i, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            tools.append(_function(tool, i))
        elif kind == "namespace":
            for inner in tool.get("tools") or []:
                if isinstance(inner, dict) and inner.get("type", "function") == "function":
                    tools.append(_function({**inner, "name": f"{tool.get('name')}{NS_SEP}{inner.get('name')}"}, i))
        elif kind == "custom":
            desc = tool.get("description") or ""
            fmt = tool.get("format") or {}
            if fmt.get("type") == "grammar" and fmt.get("definition"):
                desc += f"\n\nThe input must follow this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
            tools.append({"type": "function", "function": {
                "name": tool.get("name"), "description": desc.strip(),
                "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}}})
        elif isinstance(kind, str) and (kind in _BUILTIN or kind.startswith(_BUILTIN)):
            builtin.append(kind)
        else:
            raise RequestError(f"tools[{i}]: unknown tool type {kind!r} (function, namespace, custom, or a built-in "
                               "tool, which is not sent upstream)", param=f"tools[{i}].type")
    return tools, builtin


def _function(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise RequestError(f"tools[{i}].name must be a non-empty string", param=f"tools[{i}].name")
    fn = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    if tool.get("strict") is not None:
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def tool_choice_of(raw: Any) -> Any:
    if raw is None or raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict):
        if raw.get("type") == "function" and raw.get("name"):
            return {"type": "function", "function": {"name": raw["name"]}}
        if raw.get("type") == "allowed_tools":
            return "required" if raw.get("mode") == "required" else "auto"
        return "auto"  # a built-in tool, which is not sent upstream
    raise RequestError("'tool_choice' must be auto, none, required or a tool", param="tool_choice")


def format_of(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise RequestError(f"text.format.type {fmt['type']!r}: expected text, json_object or json_schema",
                       param="text.format")


def tool_names(request: dict[str, Any]) -> dict[str, Any]:
    """Upstream function name -> "custom" or (namespace, name), for the request's non-plain tools."""
    out: dict[str, Any] = {}
    for t in request.get("tools") or []:
        if isinstance(t, dict) and t.get("type") == "custom":
            out[t.get("name")] = "custom"
        elif isinstance(t, dict) and t.get("type") == "namespace":
            for inner in t.get("tools") or []:
                if isinstance(inner, dict):
                    out[f"{t.get('name')}{NS_SEP}{inner.get('name')}"] = (t.get("name"), inner.get("name"))
    return out


def call_item(call: dict[str, Any], item_id: str, names: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    name, args = str(fn.get("name") or ""), fn.get("arguments") or "{}"
    call_id = call.get("id") or item_id
    if names.get(name) == "custom":
        value = arguments_object(args)
        text = value.get("input") if isinstance(value.get("input"), str) else json.dumps(value)
        return {"type": "custom_tool_call", "id": item_id, "call_id": call_id, "name": name, "input": text,
                "status": "completed"}
    item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": args,
            "status": "completed"}
    if isinstance(names.get(name), tuple):
        item["namespace"], item["name"] = names[name]
    return item

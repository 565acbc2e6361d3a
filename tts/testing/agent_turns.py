"""A scripted upstream for agent turns: `LoopbackServer(reply=agent_reply)` answers like a small
tool-using model, as a pure function of the request.

- A request with `tools` is answered with a call of the first tool, `get_weather({"city": ...})`:
  "Paris" for about three samples in four, "London" for the rest (drawn from a hash of the request,
  so a seed makes it reproducible). Once the conversation holds a tool result it answers in text,
  quoting the result.
- A request with a JSON `response_format` is answered with a JSON object (its keys in either order,
  so canonical comparison matters): `{"city": "Paris", "temp_c": 18}` mostly, "Lyon" otherwise.
- Like a model that reads its workspace, a request whose earlier turns or system note already show
  an answer (a PDR workspace, a refinement's previous attempt) repeats the first one it shows.
- A judge's prompt (it asks for `WINNER: <n>`) is answered with the candidate that says Paris; a
  distill or summary prompt that quotes attempts, with the city most of them named.
- Anything else gets `loopback_reply`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from tts.testing.loopback import loopback_reply

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_SCHEMA = {"type": "json_schema", "json_schema": {"name": "weather", "strict": True, "schema": {
    "type": "object", "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}},
    "required": ["city", "temp_c"], "additionalProperties": False}}}

_SHOWN = re.compile(r'"city":\s*"(\w+)"')


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else json.dumps(content or "")


def _shown_city(messages: list[dict[str, Any]]) -> str | None:
    """The first city an earlier turn or a system note shows (a workspace), else None."""
    for m in messages[:-1] if len(messages) > 1 else []:
        found = _SHOWN.search(_text(m)) if m.get("role") in ("system", "assistant") else None
        if found and not m.get("tool_calls"):
            return found.group(1)
    last = _text(messages[-1]) if messages else ""
    found = _SHOWN.search(last) if "attempt" in last.lower() or "answer" in last.lower() else None
    return found.group(1) if found else None


def _judged(prompt: str) -> str:
    """A judge that is always right: the candidate that says Paris."""
    parts = re.split(r"^## Candidate (\d+)", prompt, flags=re.M)
    for number, body in zip(parts[1::2], parts[2::2], strict=False):
        if "Paris" in body:
            return f"WINNER: {number}"
    return "WINNER: 1"


def agent_reply(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    fmt = (body.get("response_format") or {}).get("type")
    last = _text(messages[-1]) if messages else ""
    if not body.get("tools") and fmt not in ("json_object", "json_schema"):
        if "WINNER:" in last:
            return _reply(body, [{"role": "assistant", "content": _judged(last)}])
        cities = _SHOWN.findall(last)
        if cities:  # a distill or a summary of attempts: it names the answer most of them gave
            top = max(dict.fromkeys(cities), key=cities.count)
            return _reply(body, [{"role": "assistant", "content": f'Most attempts answer with "city": "{top}".'}])
        return loopback_reply(body)
    out = []
    for i in range(int(body.get("n") or 1)):
        h = hashlib.sha256(json.dumps([messages, body.get("seed"), i], sort_keys=True).encode()).hexdigest()
        minority = int(h[:8], 16) % 4 == 0
        city = _shown_city(messages)
        if body.get("tools"):
            if any(m.get("role") == "tool" for m in messages):  # the tool has answered: say so in text
                result = next(_text(m) for m in reversed(messages) if m.get("role") == "tool")
                out.append({"role": "assistant", "content": f"It is {result} in Paris now."})
                continue
            city = city or ("London" if minority else "Paris")
            spaced = int(h[8], 16) % 2  # the same arguments, spelled two ways
            args = json.dumps({"city": city}, separators=(", ", ": ") if spaced else (",", ":"))
            call = {"id": f"call_{h[:12]}", "type": "function",
                    "function": {"name": body["tools"][0]["function"]["name"], "arguments": args}}
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            city = city or ("Lyon" if minority else "Paris")
            data = {"city": city, "temp_c": 18} if int(h[8], 16) % 2 else {"temp_c": 18, "city": city}
            out.append({"role": "assistant", "content": json.dumps(data)})
    return _reply(body, out)


def _reply(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    prompt_tokens = max(1, sum(len(json.dumps(m.get("content"))) for m in body.get("messages") or []) // 4)
    choices, completion_tokens = [], 0
    for i, m in enumerate(messages):
        completion_tokens += max(1, len(json.dumps(m)) // 4)
        finish = "tool_calls" if m.get("tool_calls") else "stop"
        choices.append({"index": i, "message": m, "finish_reason": finish})
    return {"id": "chatcmpl-agent", "object": "chat.completion", "model": body.get("model", "loopback"),
            "choices": choices, "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                          "total_tokens": prompt_tokens + completion_tokens}}


__all__ = ["WEATHER_SCHEMA", "WEATHER_TOOL", "agent_reply"]

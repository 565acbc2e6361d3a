"""Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`) <-> the chat conversation.

In: `system` (a string or text blocks) becomes the first system message; each message's content
blocks become chat messages: `text` (and `image`) parts, an assistant's `tool_use` blocks its
`tool_calls`, a user's `tool_result` blocks `tool` messages (before the user's own text, as a chat
model expects them right after the calls); `thinking` blocks and `cache_control` marks are
dropped (no chat upstream can take them). `tools` with `input_schema` become chat function tools;
Anthropic-defined and server tools (web_search_*, bash_*, text_editor_*, computer_*, ...) are not
sent and are named in `tts.builtin_tools_not_sent`. `tool_choice` auto/any/tool/none maps to
auto/required/a function/none, `stop_sequences` to `stop`. `thinking`, `metadata`,
`context_management`, `top_k` and other fields are not sent upstream (named in `tts.fields_not_sent`).

Out: a `message` with `text` and `tool_use` content blocks (a call's JSON arguments as `input`),
`stop_reason` (`tool_use`, `max_tokens`, `end_turn`) and `usage` in input/output tokens: every
upstream call of the strategy, prompt tokens the provider read from its cache as
`cache_read_input_tokens` (Anthropic's input_tokens exclude those), so the three add up.
"""

from __future__ import annotations

import json
from typing import Any

from tts.errors import RequestError
from tts.serve.wire import Event, Translated, Wire, arguments_object, need, passthrough, text_of

_KINDS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
          502: "api_error", 529: "overloaded_error"}
_SENT = ("model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "tools", "tool_choice",
         "stream", "tts")


class MessagesWire(Wire):
    name = "messages"
    id_prefix = "msg_"
    default_model_for_unknown = True

    def to_chat(self, body: Any, response_id: str) -> Translated:
        body = need(body, "a Messages API request")
        notes: dict[str, Any] = {}
        messages: list[dict[str, Any]] = []
        if body.get("system"):
            system = body["system"]
            if not isinstance(system, str | list):
                raise RequestError("'system' must be a string or a list of text blocks", param="system")
            messages.append({"role": "system", "content": text_of(system)})
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise RequestError("'messages' must be a non-empty list of messages", param="messages")
        for i, m in enumerate(raw):
            messages += _message(m, i, notes)
        chat: dict[str, Any] = {"model": body.get("model"), "messages": messages, "stream": bool(body.get("stream"))}
        tools, builtin = _tools(body.get("tools"))
        if builtin:
            notes["builtin_tools_not_sent"] = builtin
        choice = body.get("tool_choice")
        if tools:
            chat["tools"] = tools
            if choice is not None:
                chat["tool_choice"] = _tool_choice(choice)
                if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
                    chat["parallel_tool_calls"] = False
        if body.get("stop_sequences") is not None:
            chat["stop"] = body["stop_sequences"]
        passthrough(body, chat, ("max_tokens", "temperature", "top_p", "tts"))
        dropped = sorted(k for k, v in body.items() if k not in _SENT and v is not None)
        if dropped:
            notes["fields_not_sent"] = dropped
        return Translated(chat=chat, asked_model=body.get("model"), request=body, response_id=response_id,
                          notes=notes)

    def render(self, completion: dict[str, Any], t: Translated) -> dict[str, Any]:
        choice = completion["choices"][0]
        message = choice["message"]
        content: list[dict[str, Any]] = []
        text = text_of(message.get("content"))
        if text:
            content.append({"type": "text", "text": text})
        for i, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") or {}
            content.append({"type": "tool_use", "id": call.get("id") or f"toolu_{t.response_id}_{i}",
                            "name": fn.get("name"), "input": arguments_object(fn.get("arguments"))})
        if any(b["type"] == "tool_use" for b in content):
            stop = "tool_use"
        elif choice.get("finish_reason") == "length":
            stop = "max_tokens"
        else:
            stop = "end_turn"
        return {"id": t.response_id, "type": "message", "role": "assistant", "model": t.asked_model or "tts",
                "content": content, "stop_reason": stop, "stop_sequence": None, "usage": _usage(completion),
                "tts": {**completion.get("tts", {}), **t.notes}}

    def opening(self, t: Translated) -> list[Event]:
        from tts.serve.messages_stream import opening

        return opening(t.response_id, t.asked_model or "tts")

    def keepalive(self, line: str) -> Event:
        return "ping", {"type": "ping"}

    def closing(self, out: dict[str, Any], t: Translated) -> list[Event]:
        from tts.serve.messages_stream import closing

        return closing(out)

    def failing(self, status: int, payload: dict[str, Any], t: Translated) -> list[Event]:
        return [("error", self.error(status, payload))]

    def error(self, status: int, payload: dict[str, Any]) -> dict[str, Any]:
        err = payload.get("error") or {}
        return {"type": "error", "error": {"type": _KINDS.get(status, "api_error"), "message": err.get("message", "")}}


def count_tokens(t: Translated) -> int:
    """An estimate of the request's input tokens: litellm's count for the upstream model's family
    (a cl100k count for unknown ones), the translated messages and tools as the upstream gets them."""
    from tts._litellm import import_litellm

    chat = t.chat
    try:
        litellm = import_litellm()
        return int(litellm.token_counter(model=chat.get("model") or "gpt-4o", messages=chat["messages"],
                                         tools=chat.get("tools")))
    except Exception:  # no tokenizer for it: about four characters a token
        return max(1, len(json.dumps([chat["messages"], chat.get("tools")])) // 4)


def _message(raw: Any, i: int, notes: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant", "system"):
        raise RequestError(f"messages[{i}].role must be user or assistant", param=f"messages[{i}].role")
    role, content = raw["role"], raw.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise RequestError(f"messages[{i}].content must be a string or a list of content blocks",
                           param=f"messages[{i}].content")
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image" and isinstance(block.get("source"), dict):
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block["source"])}})
        elif kind == "tool_use" and role == "assistant":
            if not block.get("id") or not block.get("name"):
                raise RequestError(f"{where}: a tool_use block needs 'id' and 'name'", param=where)
            calls.append({"id": block["id"], "type": "function", "function": {
                "name": block["name"], "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
        elif kind == "tool_result":
            if not block.get("tool_use_id"):
                raise RequestError(f"{where}: a tool_result block needs 'tool_use_id'", param=where)
            text = text_of(block.get("content"))
            results.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                            "content": f"[error] {text}" if block.get("is_error") else text})
        elif kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
            parts.append({"type": "text", "text": str(block["source"].get("data", ""))})
        else:  # thinking, redacted_thinking, server tool blocks: nothing a chat model can read
            ignored = notes.setdefault("ignored_blocks", {})
            ignored[str(kind)] = ignored.get(str(kind), 0) + 1
    out: list[dict[str, Any]] = list(results)
    if role == "assistant":
        if parts or calls:
            msg: dict[str, Any] = {"role": "assistant", "content": text_of(parts) or None}
            if calls:
                msg["tool_calls"] = calls
            out.append(msg)
    elif parts:
        images = any(p["type"] == "image_url" for p in parts)
        out.append({"role": role, "content": parts if images or len(parts) > 1 else parts[0]["text"]})
    return out


def _image_url(source: dict[str, Any]) -> str:
    if source.get("type") == "url":
        return str(source.get("url"))
    return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"


def _tools(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        raise RequestError("'tools' must be a list of tools", param="tools")
    tools, builtin = [], []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise RequestError(f"tools[{i}] must be an object", param=f"tools[{i}]")
        if tool.get("type") not in (None, "custom"):
            builtin.append(str(tool.get("name") or tool["type"]))
            continue
        if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
            raise RequestError(f"tools[{i}] needs a 'name' and an 'input_schema' object", param=f"tools[{i}]")
        fn = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            fn["description"] = tool["description"]
        tools.append({"type": "function", "function": fn})
    return tools, builtin


def _tool_choice(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
    if mapped is None:
        raise RequestError("'tool_choice.type' must be auto, any, tool (with a name) or none", param="tool_choice")
    return mapped


def _usage(completion: dict[str, Any]) -> dict[str, Any]:
    u = completion.get("usage") or {}
    cached = int(((completion.get("tts") or {}).get("usage") or {}).get("cached_tokens") or 0)
    return {"input_tokens": u.get("prompt_tokens", 0) - cached, "output_tokens": u.get("completion_tokens", 0),
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}

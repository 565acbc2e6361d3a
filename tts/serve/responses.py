"""OpenAI's Responses API (`POST /v1/responses`) <-> the chat conversation strategies answer.

In: `instructions` and `input` (a string, or items: `message`, `function_call`,
`function_call_output`, `custom_tool_call`(`_output`)) become chat messages; an assistant message
and the function calls after it become one assistant turn with `tool_calls`; `reasoning` items
and other output items are carried back by clients but mean nothing to a chat model, so they are
dropped (counted in `tts.ignored_items`). Tools of type `function` go upstream as chat function
tools, `namespace` groups as `<namespace>__<name>` functions, `custom` (freeform) tools as
functions taking one string `input`; built-in tools (web_search, file_search, computer use, ...)
are not sent and are named in `tts.builtin_tools_not_sent`. `text.format` becomes
`response_format`, `max_output_tokens` `max_tokens`.

Out: a `response` object whose `output` holds a `message` item (`output_text`) and/or
`function_call` (`custom_tool_call`) items, `usage` in input/output tokens (every upstream call of
the strategy), the model the client named and the `tts` object.

State: with `store` (the API's default) the conversation and its answer are kept in memory (the
newest `STORED` responses), so `previous_response_id` continues one; an unknown id is a 400
saying to send the whole history instead.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from tts.errors import RequestError
from tts.serve.responses_tools import NS_SEP, call_item, chat_tools, format_of, tool_choice_of, tool_names
from tts.serve.wire import Event, Translated, Wire, need, passthrough, text_of

STORED = 1000
_DROPPED_FIELDS = ("reasoning", "include", "prompt_cache_key", "client_metadata", "metadata", "user", "truncation",
                   "service_tier", "safety_identifier", "prompt_cache_retention", "store", "top_logprobs")


class ResponsesWire(Wire):
    name = "responses"
    id_prefix = "resp_"
    default_model_for_unknown = True

    def __init__(self) -> None:
        self.store: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    # -- in --------------------------------------------------------------------------------
    def to_chat(self, body: Any, response_id: str) -> Translated:
        body = need(body, "a Responses API request")
        for name, why in (("background", "background responses"), ("conversation", "the Conversations API")):
            if body.get(name):
                raise RequestError(f"'{name}': tts serve does not support {why}; send the request in the foreground "
                                   "with the whole history in 'input'", param=name)
        notes: dict[str, Any] = {}
        history = self._history(body.get("previous_response_id"))
        messages: list[dict[str, Any]] = []
        if body.get("instructions"):
            messages.append({"role": "system", "content": text_of(body["instructions"])})
        messages += history
        raw = body.get("input")
        if isinstance(raw, str):
            messages.append({"role": "user", "content": raw})
        elif isinstance(raw, list):
            messages += _items(raw, notes)
        elif raw is not None:
            raise RequestError("'input' must be a string or a list of items", param="input")
        chat: dict[str, Any] = {"model": body.get("model"), "messages": messages, "stream": bool(body.get("stream"))}
        tools, builtin = chat_tools(body.get("tools"))
        if builtin:
            notes["builtin_tools_not_sent"] = builtin
        if tools:
            chat["tools"] = tools
            choice = tool_choice_of(body.get("tool_choice"))
            if choice is not None:
                chat["tool_choice"] = choice
            if body.get("parallel_tool_calls") is not None:
                chat["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
        fmt = format_of((body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None)
        if fmt is not None:
            chat["response_format"] = fmt
        if body.get("max_output_tokens") is not None:
            chat["max_tokens"] = body["max_output_tokens"]
        passthrough(body, chat, ("temperature", "top_p", "seed", "tts"))
        dropped = sorted(k for k in _DROPPED_FIELDS if body.get(k) is not None)
        if dropped:
            notes["fields_not_sent"] = dropped
        return Translated(chat=chat, asked_model=body.get("model"), request=body, response_id=response_id,
                          notes=notes)

    def _history(self, previous: Any) -> list[dict[str, Any]]:
        if previous is None:
            return []
        stored = self.store.get(previous) if isinstance(previous, str) else None
        if stored is None:
            raise RequestError(f"previous_response_id {previous!r} is not known to this server (it keeps the newest "
                               f"{STORED} stored responses in memory, none across restarts): send the whole "
                               "history in 'input' instead", param="previous_response_id")
        self.store.move_to_end(previous)
        return list(stored)

    # -- out -------------------------------------------------------------------------------
    def render(self, completion: dict[str, Any], t: Translated) -> dict[str, Any]:
        choice = completion["choices"][0]
        message = choice["message"]
        output: list[dict[str, Any]] = []
        text = text_of(message.get("content"))
        if text:
            output.append({"type": "message", "id": f"msg_{t.response_id}", "status": "completed",
                           "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": [],
                                                             "logprobs": []}]})
        for i, call in enumerate(message.get("tool_calls") or []):
            output.append(call_item(call, f"fc_{t.response_id}_{i}", tool_names(t.request)))
        if t.request.get("store") is not False:
            self._keep(t, message)
        incomplete = choice.get("finish_reason") == "length"
        out = self._shell(t, "incomplete" if incomplete else "completed", output)
        out["incomplete_details"] = {"reason": "max_output_tokens"} if incomplete else None
        out["usage"] = _usage(completion)
        out["tts"] = {**completion.get("tts", {}), **t.notes}
        return out

    def _keep(self, t: Translated, message: dict[str, Any]) -> None:
        # the conversation without this request's instructions (a continuation brings its own)
        convo = [m for m in t.chat["messages"] if not (t.request.get("instructions") and m is t.chat["messages"][0])]
        self.store[t.response_id] = [*convo, message]
        while len(self.store) > STORED:
            self.store.popitem(last=False)

    def _shell(self, t: Translated, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        r = t.request
        text = r.get("text") if isinstance(r.get("text"), dict) else {"format": {"type": "text"}}
        return {"id": t.response_id, "object": "response", "created_at": int(time.time()), "status": status,
                "error": None, "incomplete_details": None, "instructions": r.get("instructions"),
                "max_output_tokens": r.get("max_output_tokens"), "model": t.asked_model or "tts", "output": output,
                "parallel_tool_calls": r.get("parallel_tool_calls", True),
                "previous_response_id": r.get("previous_response_id"),
                "reasoning": r.get("reasoning") or {"effort": None, "summary": None},
                "store": r.get("store") is not False, "temperature": r.get("temperature"), "text": text,
                "tool_choice": r.get("tool_choice", "auto"), "tools": r.get("tools") or [], "top_p": r.get("top_p"),
                "truncation": "disabled", "usage": None, "user": None, "metadata": r.get("metadata") or {}}

    def opening(self, t: Translated) -> list[Event]:
        from tts.serve.responses_stream import opening

        return opening(self._shell(t, "in_progress", []))

    def closing(self, out: dict[str, Any], t: Translated) -> list[Event]:
        from tts.serve.responses_stream import closing

        return closing(out)

    def failing(self, status: int, payload: dict[str, Any], t: Translated) -> list[Event]:
        from tts.serve.responses_stream import failed

        response = self._shell(t, "failed", [])
        err = payload.get("error") or {}
        response["error"] = {"code": err.get("code") or err.get("type") or "server_error",
                             "message": err.get("message")}
        return failed(response)


# -- input items -> chat messages -------------------------------------------------------------
def _items(items: list[Any], notes: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ignored: dict[str, int] = {}

    def assistant() -> dict[str, Any]:
        if not out or out[-1]["role"] != "assistant":
            out.append({"role": "assistant", "content": None})
        return out[-1]  # calls join the assistant turn they follow (its text, parallel calls)

    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RequestError(f"input[{i}] must be an object", param=f"input[{i}]")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item, i))
        elif kind in ("function_call", "custom_tool_call"):
            call_id = item.get("call_id") or item.get("id")
            if not call_id or not item.get("name"):
                raise RequestError(f"input[{i}]: a {kind} needs 'call_id' and 'name'", param=f"input[{i}]")
            name = f"{item['namespace']}{NS_SEP}{item['name']}" if item.get("namespace") else item["name"]
            args = item.get("arguments", "{}") if kind == "function_call" else json.dumps({"input": item.get("input")})
            turn = assistant()
            turn.setdefault("tool_calls", []).append({"id": call_id, "type": "function",
                                                      "function": {"name": name, "arguments": args}})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            if not item.get("call_id"):
                raise RequestError(f"input[{i}]: a {kind} needs 'call_id'", param=f"input[{i}].call_id")
            output = item.get("output")
            out.append({"role": "tool", "tool_call_id": item["call_id"],
                        "content": output if isinstance(output, str) else text_of(output)})
        elif kind == "item_reference":
            raise RequestError(f"input[{i}]: item references need server-side state; send the item itself",
                               param=f"input[{i}]")
        else:  # reasoning, web_search_call, ...: nothing a chat model can read
            ignored[str(kind)] = ignored.get(str(kind), 0) + 1
    if ignored:
        notes["ignored_items"] = ignored
    if not out:
        raise RequestError("'input' has no message a model could answer", param="input")
    return out


def _message(item: dict[str, Any], i: int) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise RequestError(f"input[{i}].role must be one of user, assistant, system, developer",
                           param=f"input[{i}].role")
    content = item.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "input_image" and part.get("image_url"):
                parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
            elif isinstance(part.get("text") or part.get("refusal"), str):
                parts.append({"type": "text", "text": part.get("text") or part.get("refusal")})
        images = any(p["type"] == "image_url" for p in parts)
        content = parts if images else "".join(p["text"] for p in parts)
    elif content is not None and not isinstance(content, str):
        raise RequestError(f"input[{i}].content must be a string or a list of parts", param=f"input[{i}].content")
    # "developer" is the newer name for "system"; most chat servers know only the older one
    return {"role": "system" if role == "developer" else role, "content": content or ""}


def _usage(completion: dict[str, Any]) -> dict[str, Any]:
    u = completion.get("usage") or {}
    cached = int(((completion.get("tts") or {}).get("usage") or {}).get("cached_tokens") or 0)
    return {"input_tokens": u.get("prompt_tokens", 0), "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": u.get("completion_tokens", 0), "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.get("total_tokens", 0)}

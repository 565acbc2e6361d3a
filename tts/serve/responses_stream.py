"""A `response` object as the Responses API's semantic stream events.

`response.created` and `response.in_progress` go out as soon as the request is accepted; while
the strategy runs the stream carries SSE comments with its progress (clients skip them); then
each output item in order: `response.output_item.added`, for a message `content_part.added`,
`output_text.delta` in pieces, `output_text.done`, `content_part.done`, for a function call
`function_call_arguments.delta`/`.done` (`custom_tool_call_input` for a custom tool), then
`response.output_item.done`; last `response.completed` (or `response.incomplete`) with the whole
response and its usage. Events carry `sequence_number`, counted from the opening ones.
"""

from __future__ import annotations

import copy
from typing import Any

from tts.serve.wire import Event

OPENING = 2
"""How many numbered events `opening` sends: `closing` continues from there."""


def _ev(events: list[Event], kind: str, **data: Any) -> None:
    events.append((kind, {"type": kind, "sequence_number": OPENING + len(events), **data}))


def opening(response: dict[str, Any]) -> list[Event]:
    return [("response.created", {"type": "response.created", "sequence_number": 0, "response": response}),
            ("response.in_progress", {"type": "response.in_progress", "sequence_number": 1, "response": response})]


def failed(response: dict[str, Any]) -> list[Event]:
    return [("response.failed", {"type": "response.failed", "sequence_number": OPENING, "response": response})]


def closing(response: dict[str, Any], piece_chars: int = 64) -> list[Event]:
    events: list[Event] = []
    for index, item in enumerate(response["output"]):
        started = copy.deepcopy(item)
        started["status"] = "in_progress"
        if item["type"] == "message":
            started["content"] = []
        elif item["type"] == "function_call":
            started["arguments"] = ""
        elif item["type"] == "custom_tool_call":
            started["input"] = ""
        _ev(events, "response.output_item.added", output_index=index, item=started)
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            for ci, part in enumerate(item["content"]):
                text = part.get("text", "")
                _ev(events, "response.content_part.added", **where, content_index=ci,
                    part={**part, "text": ""})
                for start in range(0, len(text), piece_chars):
                    _ev(events, "response.output_text.delta", **where, content_index=ci,
                        delta=text[start:start + piece_chars], logprobs=[])
                _ev(events, "response.output_text.done", **where, content_index=ci, text=text, logprobs=[])
                _ev(events, "response.content_part.done", **where, content_index=ci, part=part)
        elif item["type"] == "function_call":
            _ev(events, "response.function_call_arguments.delta", **where, delta=item["arguments"])
            _ev(events, "response.function_call_arguments.done", **where, name=item["name"],
                arguments=item["arguments"])
        elif item["type"] == "custom_tool_call":
            _ev(events, "response.custom_tool_call_input.delta", **where, delta=item["input"])
            _ev(events, "response.custom_tool_call_input.done", **where, input=item["input"])
        _ev(events, "response.output_item.done", output_index=index, item=item)
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    _ev(events, final, response=response)
    return events

"""A Messages API `message` as Anthropic's stream events.

`message_start` goes out as soon as the request is accepted (an empty message: the usage is not
known before the strategy has run, so it says 0), then `ping` events while the strategy runs;
then each content block: `content_block_start`, `content_block_delta` (`text_delta` in pieces, a
tool call's arguments as one `input_json_delta`), `content_block_stop`; then `message_delta` with
the `stop_reason` and the whole usage (input tokens included: every upstream call of the
strategy), and `message_stop`.
"""

from __future__ import annotations

import json
from typing import Any

from tts.serve.wire import Event


def opening(message_id: str, model: str) -> list[Event]:
    message = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                         "cache_read_input_tokens": 0}}
    return [("message_start", {"type": "message_start", "message": message})]


def closing(message: dict[str, Any], piece_chars: int = 64) -> list[Event]:
    events: list[Event] = []

    def ev(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, **data}))

    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            ev("content_block_start", index=index, content_block={"type": "text", "text": ""})
            text = block["text"]
            for start in range(0, len(text), piece_chars):
                delta = {"type": "text_delta", "text": text[start:start + piece_chars]}
                ev("content_block_delta", index=index, delta=delta)
        else:
            ev("content_block_start", index=index, content_block={**block, "input": {}})
            ev("content_block_delta", index=index,
               delta={"type": "input_json_delta", "partial_json": json.dumps(block["input"], ensure_ascii=False)})
        ev("content_block_stop", index=index)
    ev("message_delta", delta={"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
       usage=message["usage"], tts=message.get("tts"))
    ev("message_stop")
    return events

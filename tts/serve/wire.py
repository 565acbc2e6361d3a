"""One conversation, several wire formats: what a protocol module provides.

A request in OpenAI's Responses API or Anthropic's Messages API is translated into an OpenAI
chat-completions body and then goes the chat path unchanged (`parse_request` -> `run_request`),
so strategies never see which protocol a client spoke. The chat completion the chat path builds
(the chosen candidate's assistant message as upstream wrote it, `usage` summed over every call
the strategy made, the `tts` object) is translated back into the protocol's response object or
its event stream. `Wire` is that pair of translations plus the protocol's error shape; the chat
protocol itself is the identity (`CHAT`).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from tts.errors import RequestError

Event = tuple[str | None, Any]
"""One Server-Sent Event: (event name or None, data); a `str` data with no name is a comment."""


@dataclass
class Translated:
    """A protocol request translated: the chat body for the chat path and what the reply echoes."""

    chat: dict[str, Any]
    asked_model: str | None
    """The model the client named: the response names it whatever the upstream model is."""
    request: dict[str, Any]
    response_id: str
    notes: dict[str, Any] = field(default_factory=dict)
    """For the response's `tts` object: built-in tools not sent upstream, fields that were not."""


class Wire:
    """Chat completions as they are; protocol modules override every method."""

    name = "chat"
    id_prefix = "chatcmpl-"
    default_model_for_unknown = False
    """Whether a model name this server has no stack for means the server's model (agents send
    their own model names) rather than a new upstream stack (chat completions)."""

    def first_time(self, what: str) -> bool:
        """True the first time this server's wire meets `what` (for log lines said once)."""
        seen = self.__dict__.setdefault("_seen", set())
        new = what not in seen
        seen.add(what)
        return new

    def to_chat(self, body: Any, response_id: str) -> Translated:
        return Translated(chat=body, asked_model=body.get("model") if isinstance(body, dict) else None,
                          request=body if isinstance(body, dict) else {}, response_id=response_id)

    def render(self, completion: dict[str, Any], t: Translated) -> dict[str, Any]:
        return completion

    def opening(self, t: Translated) -> list[Event]:
        return []

    def keepalive(self, line: str) -> Event:
        return None, line

    def closing(self, out: dict[str, Any], t: Translated) -> list[Event]:
        return []

    def failing(self, status: int, payload: dict[str, Any], t: Translated) -> list[Event]:
        return [(None, payload)]

    def error(self, status: int, payload: dict[str, Any]) -> dict[str, Any]:
        """The protocol's error body for an OpenAI-shaped one (`error_body`)."""
        return payload


CHAT = Wire()


# -- helpers the protocol modules share --------------------------------------------------------
def text_of(content: Any) -> str:
    """The text of a content value: a string, or a list of parts/blocks with `text` (other kinds skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return str(content)


def arguments_object(raw: Any) -> dict[str, Any]:
    """A tool call's arguments as an object (Anthropic's `input`); not an object: under `arguments`."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def need(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object ({what})")
    return body


def passthrough(body: dict[str, Any], chat: dict[str, Any], names: tuple[str, ...]) -> None:
    """Copy the sampling fields both protocols share, as they are (the chat path validates them)."""
    for name in names:
        if body.get(name) is not None:
            chat[name] = body[name]


def parse_model_map(specs: list[str] | None) -> dict[str, str]:
    """`--model-map FROM=TO` (repeatable; FROM may be a glob such as 'claude-*')."""
    out: dict[str, str] = {}
    for spec in specs or []:
        src, sep, dst = spec.partition("=")
        if not sep or not src.strip() or not dst.strip():
            from tts.errors import ConfigError

            raise ConfigError(f"--model-map {spec!r}: expected FROM=TO, e.g. --model-map 'claude-*=openai/gpt-4o'")
        out[src.strip()] = dst.strip()
    return out


def mapped_model(model_map: dict[str, str], requested: str | None) -> str | None:
    """The upstream model `--model-map` names for `requested` (exact names first, then globs), or None."""
    if not requested:
        return None
    if requested in model_map:
        return model_map[requested]
    for pattern, target in model_map.items():
        if fnmatch.fnmatchcase(requested, pattern):
            return target
    return None

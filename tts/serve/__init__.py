"""`tts serve`: test-time scaling behind an OpenAI-compatible chat-completions endpoint.

Any OpenAI client (the openai SDK, litellm, LangChain, agent frameworks, mini-swe-agent) talks to
it as to a model; each request runs the server's strategy (or the one its `tts` field names) over
the upstream model and gets back the chosen candidate as a standard `chat.completion`.

It also speaks OpenAI's Responses API and Anthropic's Messages API (Codex CLI, Claude Code), as
translations over the chat path: `wire` (what a protocol provides), `responses`,
`responses_tools`, `responses_stream`, `messages`, `messages_stream`, `wire_route` (docs/serve.md).

Modules: `app` (routes and the server), `convert` (request -> task, parameters, spec),
`conversation` (per-request backend layers), `respond` (result -> completion and chunks),
`stream` (Server-Sent Events), `security` (bind check, bearer token; secrets are redacted by
`tts.redact`, the one redactor every surface shares).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TTSServer"]


def __getattr__(name: str) -> Any:
    if name == "TTSServer":
        from tts.serve.app import TTSServer

        return TTSServer
    raise AttributeError(f"module 'tts.serve' has no attribute {name!r}")

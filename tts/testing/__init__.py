"""Test doubles at our own seam, for our tests and for users' tests.

`ScriptedBackend` answers from a list (in order, cycling), a dict (keyed by a substring of the
last user message) or a function of the request; it records every request it was sent. A
scripted item that is an exception instance is raised instead of answered, for failure drills.

`LoopbackServer` (tts/testing/loopback.py, re-exported here) is an OpenAI-compatible HTTP server on
127.0.0.1 with fault injection, for tests of the HTTP path; `python -m tts.testing serve --port P` runs it standalone.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tts.records import Completion, Usage
from tts.seam import ChatRequest
from tts.testing.loopback import FAULTS, LoopbackServer, loopback_reply  # the server, re-exported

Reply = str | Completion | BaseException
Script = Sequence[Reply] | Mapping[str, Reply] | Callable[[ChatRequest], Any]


def _last_user(request: ChatRequest) -> str:
    for m in reversed(request.messages):
        if m.role == "user":
            return m.content if isinstance(m.content, str) else str(m.content)
    return ""


def request_text(request: ChatRequest) -> str:
    """All message contents of a request joined, for assertions about what a model saw."""
    return "\n".join(m.content if isinstance(m.content, str) else str(m.content) for m in request.messages)


class ScriptedBackend:
    """A fake model. `requests` lists every ChatRequest received, in arrival order."""

    def __init__(self, script: Script, *, latency: float = 0.0, model: str = "scripted",
                 tokens_per_char: float = 0.25) -> None:
        self.script = script
        self.latency = latency
        self.model = model
        self.tokens_per_char = tokens_per_char
        self.requests: list[ChatRequest] = []
        self._cycle = itertools.cycle(script) if isinstance(script, Sequence) and not isinstance(script, str) else None
        self.namespace = f"scripted:{model}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _reply(self, request: ChatRequest) -> Any:
        if self._cycle is not None:
            return next(self._cycle)
        if isinstance(self.script, Mapping):
            text = _last_user(request)
            for key, value in self.script.items():
                if key in text:
                    return value
            raise KeyError(f"ScriptedBackend: no scripted reply matches {text[:80]!r}")
        return self.script(request)  # type: ignore[operator]

    def _completion(self, reply: Any, request: ChatRequest, i: int) -> Completion:
        if isinstance(reply, Completion):
            return reply.model_copy(update={"sample_index": request.sample_index})
        text = str(reply)
        prompt_chars = sum(len(str(m.content or "")) for m in request.messages)
        # one call however many choices: the prompt and the call belong to the first (as split_usage)
        usage = Usage(prompt_tokens=max(1, int(prompt_chars * self.tokens_per_char)) if i == 0 else 0,
                      completion_tokens=max(1, int(len(text) * self.tokens_per_char)), calls=1 if i == 0 else 0)
        return Completion(text=text, finish_reason="stop", usage=usage, model=self.model,
                          sample_index=request.sample_index + i)

    async def complete(self, request: ChatRequest) -> list[Completion]:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        out = []
        for i in range(request.n):
            reply = self._reply(request)
            if asyncio.iscoroutine(reply):
                reply = await reply
            if isinstance(reply, BaseException):
                raise reply
            out.append(self._completion(reply, request, i))
        return out

    async def aclose(self) -> None:
        pass


@contextmanager
def loopback_in_thread(**kw: Any) -> Iterator[LoopbackServer]:
    """`LoopbackServer(**kw)` on an event loop of its own thread, for code that runs its own loop
    (a CLI command's `asyncio.run`, a subprocess) against it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = LoopbackServer(**kw)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


__all__ = ["FAULTS", "LoopbackServer", "ScriptedBackend", "loopback_in_thread", "loopback_reply", "request_text"]

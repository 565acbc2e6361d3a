"""The one seam to the model: a `Backend` has one async method, `complete`.

Caching, retries, throttling, accounting and budget caps are wrappers that take a backend
and are a backend (see `tts.wrappers`); strategies only ever see this protocol.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import Field

from tts.contracts import Backend
from tts.records import Completion, Message, Record, TokenLogprob


class StreamView:
    """What a streaming caller sees of a reply in progress: its text and its tokens (with their
    logprobs when asked for) so far. One object per stream, updated in place."""

    __slots__ = ("chunks", "text", "tokens")

    def __init__(self) -> None:
        self.text = ""
        self.tokens: list[TokenLogprob] = []
        self.chunks = 0
        """Chunks that carried content (or logprobs): tokens received when the server gives no logprobs."""


_WIRE_PARAMS = ("seed", "temperature", "max_tokens", "stop", "logprobs", "top_logprobs", "tools")


class ChatRequest(Record):
    """One chat-completion request. `sample_index` and `replica` tell apart samples that are
    otherwise identical, so N samples never collapse into one cached answer."""

    messages: list[Message]
    n: int = 1
    sample_index: int = 0
    replica: str = ""
    """Which nested copy of a strategy sent this (e.g. "2" for the third PDR run inside RTV)."""
    seed: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    """Provider-specific parameters passed through unchanged (e.g. top_p, response_format)."""
    on_token: Callable[[StreamView], bool] | None = Field(None, exclude=True, repr=False)
    """Opt-in streaming: the backend streams the reply and calls this with the tokens so far after
    every chunk; a true return stops the stream (the HTTP response is closed, so the server stops
    generating) and the completion comes back with `stopped=True`, billed for the prompt and the
    tokens received. Not part of the answer's identity (the cache key), never sent on the wire;
    a stopped reply is never cached. Backends that cannot stream ignore it (whole replies)."""
    halted: Callable[[], str | None] | None = Field(None, exclude=True, repr=False)
    """Why the run that sent this was stopped (None while it runs), asked by the accounting layer
    at the moment the call would go to the model: a call still queued in the throttle or waiting
    for a retry when its run stops (a cap, a timeout, a cancellation, a client that hung up) is
    not sent. Set by `RunContext`; like `on_token`, not part of the cache key, never sent."""

    def sampling_params(self) -> dict[str, Any]:
        """The OpenAI wire parameters other than model and messages."""
        fields = self.__dict__
        out: dict[str, Any] = {} if fields["n"] == 1 else {"n": fields["n"]}
        for name in _WIRE_PARAMS:
            value = fields[name]
            if value is not None:
                out[name] = value
        if fields["extra"]:
            out.update(fields["extra"])
        return out

    def per_sample(self) -> list[ChatRequest]:
        """The one-sample requests that an `n`-sample request stands for: sample index (and seed)
        `i` for the i-th choice, as `RunContext.request` would build them one by one."""
        if self.n == 1:
            return [self]
        return [self.model_copy(update={"n": 1, "sample_index": self.sample_index + i,
                                        "seed": None if self.seed is None else self.seed + i})
                for i in range(self.n)]

    def fingerprint(self, namespace: str) -> str:
        """A stable hash of everything that determines the answer: the cache key."""
        body = {
            "ns": namespace,
            "messages": [m.to_api() for m in self.messages],
            "params": self.sampling_params(),
            "sample_index": self.sample_index,
            "replica": self.replica,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def require_namespace(backend: object) -> str:
    """The backend's `namespace`; ConfigError when it has none (or an empty one)."""
    ns = getattr(backend, "namespace", None)
    if not isinstance(ns, str) or not ns:
        from tts.errors import ConfigError

        raise ConfigError(f"backend {type(backend).__name__} has no 'namespace': give it a `namespace` attribute "
                          f"naming its model and endpoint (e.g. \"mine:http://host/v1:model-a\"), so its cached "
                          f"answers are never served for another model")
    return ns


class BackendWrapper:
    """Base for wrappers: holds the inner backend, forwards `complete` and `aclose`, and finds a layer (`find`)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    @property
    def namespace(self) -> str:
        """Identifies the model behind the stack (model name + endpoint, never a key)."""
        return require_namespace(self.inner)

    async def complete(self, request: ChatRequest) -> list[Completion]:
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def find(self, kind: type) -> Any:
        """The first layer of the stack that is an instance of `kind`, or None."""
        layer: Any = self
        while layer is not None:
            if isinstance(layer, kind):
                return layer
            layer = getattr(layer, "inner", None)
        return None


__all__ = ["Backend", "BackendWrapper", "ChatRequest", "StreamView", "require_namespace"]

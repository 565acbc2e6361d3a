"""Streamed replies (`stream: true`, Server-Sent Events of `chat.completion.chunk`) -> one
`Completion`, shared by both HTTP backends; the caller watches them through
`ChatRequest.on_token` and may stop one.

What a stream costs: a completed stream's usage is the server's usage chunk (we ask for it with
`stream_options.include_usage`); a stopped one has none, so it is billed as providers bill it,
the prompt plus the tokens received. Tokens received are the logprob entries (one per token) or,
without logprobs, the content chunks, times the tokens per entry this backend's completed streams
reported (1 until one has: some servers send several tokens a chunk). The prompt's tokens are what
the server reported for the same messages on an earlier reply of this backend (the usual case: a
stopped trace follows completed ones), else about one token per 4 characters of its JSON text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tts.backends._common import cached_prompt_tokens, get, parse_logprobs
from tts.errors import ConfigError, MalformedResponse, ServerError
from tts.records import Completion, Usage, trusted
from tts.seam import ChatRequest, StreamView

STREAM_OPTIONS = {"include_usage": True}


def check_streamable(request: ChatRequest) -> None:
    if request.n != 1:
        raise ConfigError(f"a streamed request (on_token) asks one sample, not n={request.n}; "
                          f"send one request per sample")


class StreamTally:
    """What a backend learned from its completed streams, to bill the stopped ones: prompt tokens
    by messages, and tokens per received entry."""

    def __init__(self) -> None:
        self.prompts: dict[Any, int] = {}
        self.tokens = 0
        self.units = 0

    @staticmethod
    def key(request: ChatRequest) -> Any:
        """The messages' identity. Plain text messages (the usual case, looked up on every whole
        reply) hash their texts as Python does (each string's hash is computed once and kept), with
        their length; anything else is hashed from its JSON form."""
        parts: list[Any] = []
        size = 0
        for m in request.messages:
            d = m.__dict__
            content = d["content"]
            if type(content) is not str or d["tool_calls"] or d["name"] or d["tool_call_id"] or d["refusal"]:
                break
            parts.append(d["role"])
            parts.append(content)
            size += len(content)
        else:
            if request.tools is None:
                return hash(tuple(parts)), size, len(parts)
        body = [m.to_api() for m in request.messages], request.tools
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def learn(self, request: ChatRequest, prompt_tokens: int, completion_tokens: int, units: int) -> None:
        if len(self.prompts) > 4096:  # bounded: a long-lived backend forgets old prompts
            self.prompts.clear()
        self.prompts[self.key(request)] = prompt_tokens
        if units:
            self.tokens += completion_tokens
            self.units += units

    def learn_reply(self, request: ChatRequest, out: list[Completion]) -> list[Completion]:
        """Learn from a whole (unstreamed) one-choice reply too: its prompt, and with logprobs its
        tokens per entry (a stopped stream often follows whole replies of the same prompt)."""
        if len(out) == 1 and out[0].usage.calls:
            c = out[0]
            self.learn(request, c.usage.prompt_tokens, c.usage.completion_tokens, len(c.logprobs or []))
        return out

    def prompt(self, request: ChatRequest) -> int:
        known = self.prompts.get(self.key(request))
        if known is not None:
            return known
        return sum(max(1, len(json.dumps(m.content)) // 4) for m in request.messages)

    def completion(self, units: int) -> int:
        return round(units * self.tokens / self.units) if self.units else units


class StreamAccumulator:
    """Feed it the chunks of one stream (JSON dicts or litellm's chunk objects); it keeps the
    caller's `StreamView` and says when the caller wants the stream stopped."""

    def __init__(self, request: ChatRequest, model: str, tally: StreamTally) -> None:
        check_streamable(request)
        self.request = request
        self.model = model
        self.tally = tally
        self.view = StreamView()
        self.finish: str | None = None
        self.usage: Any = None
        self.served: str | None = None

    def feed(self, chunk: Any, watch: bool = True) -> bool:
        """Take one chunk; True when the caller's `on_token` asks to stop now (not asked: `watch=False`)."""
        err = get(chunk, "error")
        if err:
            raise ServerError(f"error in the stream: {err}")
        usage = get(chunk, "usage")
        if usage:
            self.usage = usage
        served = get(chunk, "model")
        if isinstance(served, str) and served:
            self.served = served
        progressed = False
        for choice in get(chunk, "choices") or []:
            if (get(choice, "index") or 0) != 0:
                continue
            delta = get(choice, "delta")
            content = get(delta, "content") if delta is not None else None
            block = get(choice, "logprobs")
            tokens = parse_logprobs(block) if block else None
            if content:
                if not isinstance(content, str):
                    raise MalformedResponse(f"stream content is {type(content).__name__}")
                self.view.text += content
            if tokens:
                self.view.tokens.extend(tokens)
            if content or tokens:
                self.view.chunks += 1
                progressed = True
            finish = get(choice, "finish_reason")
            if finish is not None:
                self.finish = str(finish)
        return watch and progressed and self.request.on_token is not None and bool(self.request.on_token(self.view))

    @property
    def units(self) -> int:
        return len(self.view.tokens) or self.view.chunks

    def completion(self, latency: float, stopped: bool) -> Completion:
        u = self.usage
        if u and not stopped:
            prompt, completion = int(get(u, "prompt_tokens") or 0), int(get(u, "completion_tokens") or 0)
            self.tally.learn(self.request, prompt, completion, self.units)
            usage = Usage.of(prompt, completion, 1, cached_tokens=cached_prompt_tokens(u))
        else:
            usage = Usage.of(self.tally.prompt(self.request), self.tally.completion(self.units), 1)
        if not stopped and self.finish is None and not self.view.chunks:
            raise MalformedResponse("the stream ended without a token or a finish reason")
        return trusted(Completion, {
            "text": self.view.text, "finish_reason": None if stopped else self.finish, "usage": usage,
            "latency_s": latency, "cached": False, "model": self.served or self.model,
            "sample_index": self.request.sample_index, "logprobs": list(self.view.tokens) or None,
            "tool_calls": None, "stopped": stopped})

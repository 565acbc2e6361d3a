"""Per-request layers over the server's shared backend stack.

`ConversationBackend` gives the client's parameters (tools, tool_choice, response_format,
temperature, ...) to exactly the calls that answer the client's conversation as it was sent:
a sample of it carries the tools and may answer with a tool call, while a judge's or a
summarizer's prompt (another conversation) does not, so `tool_choice: "required"` or a JSON
schema never bends a judge's verdict. It also counts the calls started, for progress lines.
Below it the stack is shared by every request: one cache, one throttle, one server budget.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tts.errors import BackendError
from tts.records import CallRecord, Completion, Message, Usage
from tts.seam import Backend, BackendWrapper, ChatRequest

_ROUND = re.compile(r"(?:^|/)round(\d+)(?:/|$)")


class Progress:
    """What a running request has done so far, for keep-alive comments and logs."""

    def __init__(self, planned_samples: int | None = None, planned_rounds: int | None = None) -> None:
        self.planned = planned_samples
        self.planned_rounds = planned_rounds
        self.round = 0
        """The latest round (of PDR, sequential refinement: `round1`, ... in call paths) answered."""
        self.started = 0
        self.answered: dict[str, int] = {}
        self.error: BackendError | None = None
        """The last upstream failure that outlived its retries (its HTTP status decides ours)."""
        self.in_flight = 0
        self.answers: list[Completion] = []
        """Every answer to the conversation itself, kept so a run a budget cut short still returns
        what was paid for (calls in flight when the cap hit land here after the strategy gave up)."""
        self.usage = Usage()
        """Every call this request made, as the run context counts them."""
        self.idle = asyncio.Event()
        self.idle.set()

    def record(self, rec: CallRecord) -> None:
        """Count an answered call (an `on_call` of the run)."""
        if rec.error is not None:
            return
        self.answered[rec.role] = self.answered.get(rec.role, 0) + 1
        rounds = _ROUND.findall(rec.path)
        if rounds:
            self.round = max(self.round, int(rounds[0]))

    def line(self, elapsed_s: float) -> str:
        done = sum(self.answered.values())
        roles = ", ".join(f"{role} {n}" for role, n in sorted(self.answered.items()))
        out = f"tts: {elapsed_s:.1f}s, {done}/{self.started} calls answered"
        if roles:
            out += f" ({roles})"
        if self.planned:
            out += f", {self.answered.get('sample', 0)}/{self.planned} samples"
        if self.round:
            out += f", round {self.round}" + (f"/{self.planned_rounds}" if self.planned_rounds else "")
        return out


class ConversationBackend(BackendWrapper):
    def __init__(self, inner: Backend, conversation: list[Message], typed: dict[str, Any],
                 extra: dict[str, Any], progress: Progress | None = None) -> None:
        super().__init__(inner)
        self.conversation = conversation
        self.typed = typed
        self.extra = extra
        self.progress = progress

    def answers_conversation(self, request: ChatRequest) -> bool:
        return request.messages == self.conversation

    async def complete(self, request: ChatRequest) -> list[Completion]:
        if self.answers_conversation(request):
            request = request.model_copy(update={**self.typed, "extra": {**request.extra, **self.extra}})
        p = self.progress
        if p is None:
            return await self.inner.complete(request)
        p.started += 1
        p.in_flight += 1
        p.idle.clear()
        try:
            out = await self.inner.complete(request)
        except BackendError as exc:
            p.error = exc
            raise
        finally:
            p.in_flight -= 1
            if p.in_flight == 0:
                p.idle.set()
        p.usage = p.usage + out[0].usage
        if self.answers_conversation(request):
            p.answers.append(out[0])
        return out

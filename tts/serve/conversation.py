"""Per-request progress over the server's shared backend stack.

`ProgressBackend` counts the calls a request started and answered, for keep-alive lines and
logs, and remembers the last upstream failure (its HTTP status decides ours). Which calls get
the client's tools, format and sampling parameters is the strategy's business, decided by the
role of each call (`run_task(turn=...)`), not here. Below this layer the stack is shared by
every request: one cache, one throttle, one server budget.
"""

from __future__ import annotations

import re

from tts.errors import BackendError
from tts.records import CallRecord, Completion
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


class ProgressBackend(BackendWrapper):
    def __init__(self, inner: Backend, progress: Progress) -> None:
        super().__init__(inner)
        self.progress = progress

    async def complete(self, request: ChatRequest) -> list[Completion]:
        p = self.progress
        p.started += 1
        p.in_flight += 1
        try:
            return await self.inner.complete(request)
        except BackendError as exc:
            p.error = exc
            raise
        finally:
            p.in_flight -= 1

"""The per-call timeout's clock, shared by the wrappers: the retry wrapper opens a timeout scope
per attempt and leaves it paused; the layer that actually sends (a throttle, once the call has a
slot; a backend that queues internally) starts it, so time spent queueing never counts."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

# The running attempt's timeout scope and its length, for a throttle below us to start.
CALL_TIMEOUT: ContextVar[tuple[asyncio.Timeout, float] | None] = ContextVar("tts_call_timeout", default=None)


def start_call_timeout() -> None:
    """Start the current attempt's clock now (a throttle calls this once the request may be sent)."""
    scope = CALL_TIMEOUT.get()
    if scope is not None and not scope[0].expired():
        scope[0].reschedule(asyncio.get_running_loop().time() + scope[1])


def pause_call_timeout() -> None:
    """Stop the current attempt's clock (a backend that queues internally calls this while it waits
    for its turn; `start_call_timeout` restarts it for the full length)."""
    scope = CALL_TIMEOUT.get()
    if scope is not None and not scope[0].expired():
        scope[0].reschedule(None)

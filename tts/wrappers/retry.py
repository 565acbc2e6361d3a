"""RetryBackend: tries a call again after a transient failure, with backoff.

Retried: every `TransientError` (429, 5xx, connection errors, malformed bodies, timeouts) and the
per-call timeout itself. Never retried: `PermanentError` (the caller's 4xx mistake, a bad key),
`UsageError`, `BudgetExceeded`, or anything that is not a backend failure.

Delay before attempt k+1: full jitter, uniform(0, min(max_delay, base_delay * 2**(k-1))), and at
least the server's Retry-After (capped at max_delay) when it sent one.

The per-call timeout counts from when the request is sent: when a ThrottleBackend is below this
wrapper, the clock starts when the call gets its slot (`start_call_timeout`), not while it queues.
When the base backend bounds each request by the same timeout itself, from when it sends it (the
lean client's HTTP session: `bounds_requests`), this wrapper opens no timer of its own: two timers
of the same length per call would cost ~10 us of every call's CPU for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable

from tts.batching import base_backend
from tts.errors import CallTimeout, RateLimited, TransientError
from tts.records import Completion
from tts.seam import Backend, BackendWrapper, ChatRequest
from tts.wrappers.call_timeout import CALL_TIMEOUT, pause_call_timeout, start_call_timeout

log = logging.getLogger("tts.retry")

__all__ = ["RetryBackend", "pause_call_timeout", "start_call_timeout"]


def _base_bound(inner: Backend) -> float | None:
    """The time limit the base backend puts on each request itself, from when it sends it, or None."""
    bound = getattr(base_backend(inner), "bounds_requests", None)
    return bound if isinstance(bound, int | float) and not isinstance(bound, bool) else None


def _starts_clock_below(inner: Backend) -> bool:
    """Whether a layer below (a throttle) starts each attempt's clock itself (`starts_call_timeout`)."""
    layer: object = inner
    while layer is not None:
        if getattr(layer, "starts_call_timeout", False):
            return True
        layer = getattr(layer, "inner", None)
    return False

class RetryBackend(BackendWrapper):
    def __init__(
        self,
        inner: Backend,
        max_attempts: int = 8,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float | None = 120.0,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._sleep = sleep
        # With a throttle below, it starts the clock when the call gets a slot.
        self._throttled = _starts_clock_below(inner)
        # The base bounds each request by this very timeout (counted from when it is sent): no timer here.
        self._bounded_below = timeout is not None and _base_bound(inner) == timeout
        self._rng = rng or random.Random()
        self.retries = 0
        """Attempts made after a failure, over all calls."""
        self.errors: Counter[str] = Counter()
        """Transient failures seen, by error type (each one was followed by a retry or ended the call)."""

    def delay(self, attempt: int, error: TransientError) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        backoff = self._rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(backoff, min(error.retry_after, self.max_delay))
        return backoff

    async def _attempt(self, request: ChatRequest) -> list[Completion]:
        try:
            async with asyncio.timeout(None if self._throttled else self.timeout) as scope:
                token = CALL_TIMEOUT.set((scope, self.timeout))
                try:
                    return await self.inner.complete(request)
                finally:
                    CALL_TIMEOUT.reset(token)
        except TimeoutError as exc:
            raise CallTimeout(f"no answer within {self.timeout} s") from exc

    async def complete(self, request: ChatRequest) -> list[Completion]:
        attempt = 0
        while True:
            attempt += 1
            try:
                if self.timeout is None or self._bounded_below:  # no timer of ours: the call itself
                    return await self.inner.complete(request)
                return await self._attempt(request)
            except TransientError as exc:
                self.errors[type(exc).__name__] += 1
                if attempt >= self.max_attempts:
                    raise
                wait = self.delay(attempt, exc)
                log.debug("attempt %d failed (%s: %s); retrying in %.2f s", attempt, type(exc).__name__, exc, wait)
            self.retries += 1
            await self._sleep(wait)

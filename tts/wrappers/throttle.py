"""ThrottleBackend: at most `concurrency` calls in flight, `rpm` requests and `tpm` tokens a minute.

Requests per minute use asyncio-throttle's sliding window. Tokens per minute use a small token
bucket: a call takes an estimate up front (prompt characters / 4 + max_tokens) and, once answered,
the estimate is corrected with the real usage. A wait here does not count against the per-call
timeout of a RetryBackend above: its clock starts when the call leaves the queue.

A slot is freed as soon as the answer's bytes are in (the base backend calls `answer_received`),
not after they are parsed and accounted: the next queued call is sent first and this one's
bookkeeping runs after, so slots are not left idle while a burst of answers is processed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar

from tts.records import Completion
from tts.seam import Backend, BackendWrapper, ChatRequest
from tts.wrappers.call_timeout import start_call_timeout

_FREE_SLOT: ContextVar[Callable[[], None] | None] = ContextVar("tts_free_slot", default=None)


def answer_received() -> None:
    """Free the current call's throttle slot now: its answer has arrived (a base backend calls this
    once it has read the body, before parsing it). Harmless without a throttle."""
    free = _FREE_SLOT.get()
    if free is not None:
        free()


DEFAULT_COMPLETION_ESTIMATE = 256
"""Completion tokens assumed for a request that sets no max_tokens."""


def estimate_tokens(request: ChatRequest) -> int:
    chars = sum(len(m.content) if isinstance(m.content, str) else len(str(m.content or "")) for m in request.messages)
    return chars // 4 + (request.max_tokens or DEFAULT_COMPLETION_ESTIMATE) * request.n


class TokenBucket:
    """`per_minute` tokens, refilled continuously. The level may go negative after a correction."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self.level = self.capacity
        self._t = time.monotonic()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._t) * self.rate)
        self._t = now

    async def take(self, tokens: float) -> None:
        tokens = min(tokens, self.capacity)  # a huge request waits for a full bucket, not forever
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:  # first come, first served
            self._refill()
            while self.level < tokens:
                await asyncio.sleep((tokens - self.level) / self.rate)
                self._refill()
            self.level -= tokens

    def settle(self, estimated: float, actual: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + estimated - actual)


class ThrottleBackend(BackendWrapper):
    starts_call_timeout = True  # the retry wrapper above leaves each attempt's clock to us

    def __init__(self, inner: Backend, concurrency: int = 64, rpm: float | None = None,
                 tpm: float | None = None) -> None:
        super().__init__(inner)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.rpm = rpm
        self.tpm = tpm
        self._requests = None
        if rpm:
            from asyncio_throttle import Throttler

            # Poll a few times per request interval rather than asyncio-throttle's default 100 Hz.
            self._requests = Throttler(rate_limit=rpm, period=60.0, retry_interval=min(0.5, max(0.01, 15.0 / rpm)))
        self._tokens = TokenBucket(tpm) if tpm else None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.waiting = 0
        """Calls queued for a slot now."""
        self._room: list[asyncio.Future[None]] = []

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:  # asyncio primitives belong to one loop
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._slots

    async def until_room(self) -> None:
        """Return once fewer calls are queued than there are slots (`tts.run.run_many` starts its
        next task then: every slot that frees still finds a call waiting, and no more is queued)."""
        if self.waiting < self.concurrency:
            return
        room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room.append(room)
        await room

    async def complete(self, request: ChatRequest) -> list[Completion]:
        slots = self._semaphore()
        self.waiting += 1
        try:
            await slots.acquire()
        finally:
            self.waiting -= 1
            if self._room and self.waiting < self.concurrency:
                room, self._room = self._room, []
                for r in room:
                    if not r.done():
                        r.set_result(None)
        held, counted = True, False

        def free() -> None:  # once: when the answer arrives (answer_received), else when the call ends
            nonlocal held, counted
            if held:
                held = False
                if counted:
                    counted = False
                    self.in_flight -= 1
                slots.release()

        try:
            if self._requests is not None:
                await self._requests.acquire()
            estimate = 0
            if self._tokens is not None:
                estimate = estimate_tokens(request)
                await self._tokens.take(estimate)
            start_call_timeout()
            self.in_flight += 1
            counted = True
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight
            token = _FREE_SLOT.set(free)
            try:
                out = await self.inner.complete(request)
            finally:
                _FREE_SLOT.reset(token)
        finally:
            free()
        if self._tokens is not None:
            self._tokens.settle(estimate, sum(c.usage.total_tokens for c in out))
        return out

"""CacheBackend: answers a request it has seen before from disk, for free.

The key is `request.fingerprint(namespace)`: model and endpoint, messages, sampling parameters,
sample index and replica, so N samples of one prompt stay N different entries, and never an API
key. The namespace is the backend's `namespace` attribute (model and endpoint): a backend without
one is a ConfigError here, since keying by class name would let two models share answers.
Entries are stored only after a successful call (never a stream its caller stopped), already in
their "hit" form: cached=True, with the usage and list price of the call that made the answer
(plus cached_calls=1), so a result
built on a hit reports what it consumed exactly as on a cold run. diskcache keeps them in
SQLite, which many processes and threads may share; within one process, identical requests in
flight together are sent once. Entries are written by one writer thread, so the event loop never
waits on SQLite's commits; an answer is still returned only once its entry is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import TypeAdapter

from tts.records import Completion
from tts.seam import Backend, BackendWrapper, ChatRequest, require_namespace

log = logging.getLogger("tts.cache")

_KEY_VERSION = "tts-cache-2"
"""Version 2: entries carry the usage and cost of their answer (version 1 entries carried none)."""
_COMPLETIONS = TypeAdapter(list[Completion])
_OPENED = "tts-cache-opened"
"""The key of the write made at open (see `_open_writer`); never a request's key, never left behind."""


class CacheBackend(BackendWrapper):
    def __init__(self, inner: Backend, directory: str | Path, *,
                 on_hit: Callable[[list[Completion]], None] | None = None) -> None:
        """`on_hit` is told about every answer served from the cache (e.g. an accounting layer
        below this one, which hits never reach, uses it to count cached calls)."""
        super().__init__(inner)
        namespace = require_namespace(inner)
        self.on_hit = on_hit
        import diskcache

        self.directory = str(directory)
        # No eviction and no culling: entries are small, a paid answer should never vanish (a resumed
        # run relies on it), and skipping the bookkeeping makes a store ~25% cheaper.
        self._disk = diskcache.Cache(self.directory, eviction_policy="none", cull_limit=0)
        self._ns = f"{_KEY_VERSION}|{namespace}"
        self._pending: dict[str, list[asyncio.Future[bytes]]] = {}
        """Requests being sent now, by key, with the futures of identical requests waiting for them."""
        self._lock = threading.Lock()
        self._queue: list[tuple[list[tuple[str, bytes]], asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        """Entries handed to the writer, with the future each batch's caller waits on."""
        self._unwritten: dict[str, bytes] = {}
        """Entries handed to the writer and not yet committed: look-ups see them meanwhile."""
        self._writing = False
        self._writer: ThreadPoolExecutor | None = None
        self._writer_thread()  # its SQLite connection is opened now, before the first answer
        self.hits = 0
        self.misses = 0

    def key(self, request: ChatRequest) -> str:
        return request.fingerprint(self._ns)

    def lookup(self, request: ChatRequest, key: str | None = None) -> list[Completion] | None:
        """The cached answer to `request` in hit form, or None. Never calls the model."""
        key = key or self.key(request)
        raw = self._unwritten.get(key) or self._disk.get(key)
        return None if raw is None else _COMPLETIONS.validate_json(raw)

    async def complete(self, request: ChatRequest) -> list[Completion]:
        if request.n > 1:
            return await self._complete_samples(request)
        key = self.key(request)
        while True:
            hit = self.lookup(request, key)
            if hit is not None:
                return self._hit(hit)
            waiters = self._pending.get(key)
            if waiters is None:
                break
            # The same request is already on its way: share its answer instead of paying twice.
            mine: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            waiters.append(mine)
            try:
                return self._hit(_COMPLETIONS.validate_json(await mine))
            except _SenderCancelled:  # the sender gave up, not us: send it ourselves
                continue

        self.misses += 1
        waiters = self._pending[key] = []
        try:
            out = await self.inner.complete(request)
        except BaseException as exc:
            del self._pending[key]
            for w in waiters:
                if not w.done():
                    w.set_exception(_SenderCancelled() if isinstance(exc, asyncio.CancelledError) else exc)
            raise
        del self._pending[key]
        if any(c.stopped for c in out):  # a stream its caller stopped is not an answer: never stored or shared
            for w in waiters:
                if not w.done():
                    w.set_exception(_SenderCancelled())
            return out
        raw = _hit_form(out)
        for w in waiters:
            if not w.done():
                w.set_result(raw)
        await self._store([(key, raw)])
        return out

    async def _complete_samples(self, request: ChatRequest) -> list[Completion]:
        """An `n`-sample request, cached per sample (the key of the one-sample request each choice
        stands for): the samples already stored are hits, the others go out in one request."""
        singles = request.per_sample()
        keys = [self.key(r) for r in singles]
        got: list[Completion | None] = [(hit[0] if (hit := self.lookup(r, k)) else None)
                                        for r, k in zip(singles, keys, strict=True)]
        missing = [i for i, c in enumerate(got) if c is None]
        # hits keep the usage their sample was apportioned when it was paid (the consumed view)
        if len(missing) < len(singles):
            self._hit([c for c in got if c is not None])
        if missing:
            self.misses += 1
            out = await self.inner.complete(singles[missing[0]].model_copy(update={"n": len(missing)}))
            entries = []
            for i, c in zip(missing, out, strict=False):  # fewer choices than asked: the server ignored n
                got[i] = c = c.model_copy(update={"sample_index": singles[i].sample_index})
                entries.append((keys[i], _hit_form([c])))
            await self._store(entries)
        return [c for c in got if c is not None]

    def _writer_thread(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="tts-cache-writer")
            self._writer.submit(self._open_writer)
        return self._writer

    def _open_writer(self) -> None:
        """In the writer thread, at open: its own connection and a first write that leaves nothing
        behind (an entry stored and deleted in one transaction). The first write to a fresh
        write-ahead log syncs its header to disk (two fdatasyncs, up to ~7 ms here): paid now, while
        the run is being set up, not by the first wave's answers."""
        try:
            with self._disk.transact():
                self._disk.set(_OPENED, b"")
                self._disk.delete(_OPENED)
        except Exception as exc:  # a read-only cache: its answers are still served; stores warn later
            log.debug("cache: cannot write to %s: %s", self.directory, exc)

    async def _store(self, entries: list[tuple[str, bytes]]) -> None:
        """Write entries before their answer is returned, so a crash right after cannot lose a paid
        call, without the event loop waiting on SQLite: the writer thread commits them while the
        loop goes on with other calls, and entries handed over while it commits are committed
        together next, in one transaction (a third of the cost of one each)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._unwritten.update(entries)
            self._queue.append((entries, loop, done))
            start, self._writing = not self._writing, True
        if start:
            self._writer_thread().submit(self._drain)
        await done  # a cancelled caller's entries are written all the same

    def _drain(self) -> None:
        """In the writer thread: commit what was handed over, batch after batch, until none is left."""
        while True:
            with self._lock:
                queue, self._queue = self._queue, []
                if not queue:
                    self._writing = False
                    return
            entries = [e for batch, _, _ in queue for e in batch]
            try:
                with self._disk.transact():
                    for key, raw in entries:
                        self._disk.set(key, raw)
            except Exception as exc:  # a full disk or a locked database must not fail a paid answer
                log.warning("cache: could not store %d entries in %s: %s", len(entries), self.directory, exc)
            with self._lock:
                for key, raw in entries:
                    if self._unwritten.get(key) is raw:
                        del self._unwritten[key]
            for _, loop, done in queue:
                try:
                    loop.call_soon_threadsafe(_settle, done)
                except RuntimeError:  # its loop is closed: nobody waits any more
                    pass

    def _hit(self, out: list[Completion]) -> list[Completion]:
        self.hits += 1
        if self.on_hit is not None:
            self.on_hit(out)
        return out

    def close(self) -> None:
        """Wait for the writer to commit what it was handed, then close both connections."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.submit(self._disk.close)  # the writer thread's own connection
            writer.shutdown(wait=True)
        self._disk.close()

    async def aclose(self) -> None:
        self.close()
        await super().aclose()


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


class _SenderCancelled(Exception):
    """Told to the waiters of a request whose sender was cancelled."""


def _hit_form(out: list[Completion]) -> bytes:
    """What a later hit returns: the same completions with the same usage and cost, flagged cached
    (the call's `cached_calls` is 1, on its first completion, like its `calls`)."""
    hits = [c.model_copy(update={"cached": True, "latency_s": 0.0, "usage": c.usage.model_copy(
                update={"cached_calls": c.usage.calls})})
            for c in out]
    return _COMPLETIONS.dump_json(hits)

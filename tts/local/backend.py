"""`LocalBackend`: the `Backend` behind `--model local`, over one server shared per process (refcounted)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, ClassVar

from tts.errors import ConnectionFailed, PermanentError, ServerError
from tts.local.extra import MODEL_NAME, N_CTX, require_local_extra
from tts.local.server import LocalServer, how_it_ended
from tts.records import Completion
from tts.seam import ChatRequest
from tts.wrappers.call_timeout import pause_call_timeout, start_call_timeout


class _Shared:
    """The one server a process shares among its LocalBackends, with a count of who uses it."""

    server: ClassVar[LocalServer | None] = None
    users: ClassVar[int] = 0
    start_error: ClassVar[BaseException | None] = None
    crashes: ClassVar[int] = 0
    """Times the server died while answering since it last answered (one restart is tried)."""
    guard: ClassVar[threading.Lock] = threading.Lock()
    # asyncio primitives belong to one event loop; a process may run several loops (asyncio.run twice).
    locks: ClassVar[weakref.WeakKeyDictionary[Any, asyncio.Lock]] = weakref.WeakKeyDictionary()
    seats: ClassVar[weakref.WeakKeyDictionary[Any, _Seats]] = weakref.WeakKeyDictionary()


SEATS_PER_SLOT = 4
"""Samples one event loop keeps at the server per sequence slot. A request answers when its last
sample ends, so a seat stays taken by a finished sample until its slowest sibling ends: with twice
the slots, the server decoded fewer than 16 sequences in 90% of its steps on the README's job
(stragglers of four requests), with four times, in 41%. More would queue longer inside the
server, where a call's timeout runs."""


class _Seats:
    """The samples one event loop keeps at the server (`SEATS_PER_SLOT` per slot), so the server
    always has the next requests' samples at hand to start the moment a sequence frees up (it
    queues them fairly), and no more, so a call waits its turn mostly here, with its timeout
    paused, rather than inside the server. A request for `n` samples waits until `n` seats are
    free (or all are, for a larger `n`)."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self.changed = asyncio.Condition()

    async def take(self, n: int) -> int:
        n = min(n, self.total)
        async with self.changed:
            await self.changed.wait_for(lambda: self.used + n <= self.total)
            self.used += n
        return n

    async def give(self, n: int) -> None:
        async with self.changed:
            self.used -= n
            self.changed.notify_all()


def _per_loop(table: weakref.WeakKeyDictionary[Any, Any], make: Any) -> Any:
    loop = asyncio.get_running_loop()
    with _Shared.guard:
        if loop not in table:
            table[loop] = make()
        return table[loop]


def shared_server() -> LocalServer | None:
    """The process's shared server, if one was started."""
    return _Shared.server


def stop_shared_server() -> None:
    """Stop the shared server now (it restarts on the next call)."""
    server, _Shared.server = _Shared.server, None
    _Shared.users = 0
    _Shared.start_error = None
    _Shared.crashes = 0
    if server is not None:
        server.stop()


class LocalBackend:
    """`--model local`: the embedded SmolLM2-135M-Instruct, started on the first call.

    One server per process, shared by every LocalBackend; it stops when the last backend that used
    it is closed (`aclose`), or at exit. Requests go out while the server has room for them (it
    decodes its slots together and keeps more samples queued); a call's timeout runs only once it
    has its seats.
    """

    namespace = f"local:{MODEL_NAME}"
    supports_n = True
    """The server draws `n` samples of one prompt together, on one prefill (see tts.batching)."""

    def __init__(self, *, timeout: float | None = 300.0, startup_timeout: float = 180.0) -> None:
        require_local_extra()  # fail at construction, before any task starts
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.model = MODEL_NAME
        self._http: Any = None
        self._api_base: str | None = None
        self._using = False

    def __repr__(self) -> str:
        return f"LocalBackend(model={MODEL_NAME!r})"

    @property
    def context_tokens(self) -> int:
        """The context window of the server (prompt and reply together)."""
        server = _Shared.server
        return server.n_ctx if server is not None else N_CTX

    async def endpoint(self) -> str:
        """The shared server's OpenAI-compatible URL (up to /v1), started if needed, for a client of its
        own (mini-swe-agent as the agent). This backend counts as a user of the server until `aclose`."""
        return (await self._server()).api_base

    async def _server(self) -> LocalServer:
        async with _per_loop(_Shared.locks, asyncio.Lock):
            if _Shared.start_error is not None:  # don't retry a failed start for every queued call
                raise _Shared.start_error
            server = _Shared.server
            if server is None or not server.running:
                if server is not None:
                    server.stop()  # it died: start a fresh one
                server = LocalServer(startup_timeout=self.startup_timeout)
                try:
                    await server.astart()
                except PermanentError as exc:
                    _Shared.start_error = exc
                    raise
                _Shared.server = server
            if not self._using:
                self._using = True
                _Shared.users += 1
            return server

    async def _backend(self, server: LocalServer) -> Any:
        if self._http is None or self._api_base != server.api_base:
            from tts.backends.openai_http import OpenAIHTTPBackend

            old, self._http = self._http, OpenAIHTTPBackend(MODEL_NAME, server.api_base, timeout=self.timeout)
            self._api_base = server.api_base
            if old is not None:  # a restarted server has a new port: the old connections are dead
                await old.aclose()
        return self._http

    async def _send(self, server: LocalServer, request: ChatRequest) -> list[Completion]:
        """One request to the server; its death while answering is told apart from a refused call."""
        try:
            got = await (await self._backend(server)).complete(request)
        except ConnectionFailed:
            if (code := await _exited(server)) is None:
                raise
            raise _died(server, code) from None
        _Shared.crashes = 0
        return got

    async def complete(self, request: ChatRequest) -> list[Completion]:
        # Waiting for the server to start, or for free slots, is not the call hanging.
        pause_call_timeout()
        server = await self._server()
        seats = _per_loop(_Shared.seats, lambda: _Seats(SEATS_PER_SLOT * server.slots))
        taken = await seats.take(request.n)
        try:
            start_call_timeout()
            return await self._send(server, request)
        finally:
            await seats.give(taken)

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        if self._using:
            self._using = False
            _Shared.users -= 1
            if _Shared.users <= 0 and _Shared.server is not None:
                server, _Shared.server = _Shared.server, None
                _Shared.users = 0
                await server.astop()


async def _exited(server: LocalServer, wait: float = 0.5) -> int | None:
    """The server process's exit status once it has exited, given a moment (the dropped connection
    comes before the exit); None while it runs, or when it was stopped on purpose."""
    for _ in range(int(wait / 0.05)):
        if server.proc is None:
            return None
        if (code := server.proc.poll()) is not None:
            return code
        await asyncio.sleep(0.05)
    return None


def _died(server: LocalServer, code: int) -> ServerError | PermanentError:
    """The error for a server that died while answering: transient the first time (the next call
    starts a fresh server), permanent, with its log, when it dies again before answering anything
    (every queued call then fails at once instead of restarting it again)."""
    how = how_it_ended(code)
    _Shared.crashes += 1
    if _Shared.crashes < 2:
        return ServerError(f"the embedded model server died while answering ({how}); restarting it")
    error = PermanentError(f"the embedded model server died twice while answering ({how}), so this machine "
                           f"cannot run it as built; its log ends: {server.log_tail(6)}")
    _Shared.start_error = error  # like a failed start: no more restarts
    return error

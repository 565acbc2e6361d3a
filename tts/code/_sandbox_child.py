"""The child side of `tts.code.sandbox`: run one candidate program and its tests, in this process only.

Started as `python -I _sandbox_child.py JOB.json` in a fresh process group by `tts.code.sandbox`;
never imported by tts. Standard library only (it must not import tts: the child's sys.path is
isolated). It sets its own resource limits and blocks sockets BEFORE it compiles the untrusted
program, then appends one JSON line per event to the job's results file:
    {"loaded": true}                         the program ran to its end (or {"loaded": false, ...})
    {"i": 3, "status": "failed", ...}        one per test, in order
The parent watches that file to tell which test was running when it had to kill the process.
"""

import json
import os
import resource
import signal
import sys
import time


class _TimeLimit(BaseException):
    """Raised by SIGALRM. A BaseException, so the candidate's `except Exception` does not swallow it."""


def _limits(job):
    mem = int(job["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(job["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    fsize = int(job["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _block_network():
    """Best effort inside the process: every socket operation that could reach a peer fails."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError(101, "network access is disabled in the tts sandbox")

    for name in ("connect", "connect_ex", "sendto", "bind"):
        setattr(socket.socket, name, refuse)
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    socket.socketpair = refuse

    import _socket

    class _NoNetwork(_socket.socket):  # for code that goes around the socket module
        connect = connect_ex = sendto = bind = refuse

    _socket.socket = _NoNetwork


def _alarm(signum, frame):
    raise _TimeLimit()


def _describe(exc):
    if isinstance(exc, _TimeLimit):
        return "time limit exceeded (SIGALRM)"
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 500 else text[:497] + "..."


def _status(exc):
    if isinstance(exc, _TimeLimit):
        return "timeout"
    if isinstance(exc, AssertionError):
        return "failed"
    return "error"


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    out = open(job["results"], "a", buffering=1, encoding="utf-8")  # opened before any limit or candidate code

    def emit(record):
        out.write(json.dumps(record) + "\n")
        out.flush()

    _limits(job)
    if job.get("block_sockets", True):
        _block_network()
    signal.signal(signal.SIGALRM, _alarm)
    timeout = float(job["timeout_s"])
    ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        exec(compile(job["program"], "<candidate>", "exec"), ns)
        entry = job.get("entry_point")
        if entry:
            if not callable(ns.get(entry)):
                raise NameError(f"the code defines no function {entry!r}")
            ns["candidate"] = ns[entry]
        if job.get("setup"):
            exec(compile(job["setup"], "<test setup>", "exec"), ns)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:  # the program itself failed: every test shares that outcome
        signal.setitimer(signal.ITIMER_REAL, 0)
        emit({"loaded": False, "status": "timeout" if isinstance(exc, _TimeLimit) else "error",
              "detail": _describe(exc),
              "seconds": time.monotonic() - started})
        return
    emit({"loaded": True})
    for i in range(job["start"], len(job["tests"])):
        started = time.monotonic()
        status, detail = "passed", ""
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(compile(job["tests"][i], f"<test {i}>", "exec"), dict(ns))
            signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            status, detail = _status(exc), _describe(exc)
        emit({"i": i, "status": status, "detail": detail, "seconds": time.monotonic() - started})


if __name__ == "__main__":
    try:
        sys.stdin.close()
    except OSError:
        pass
    main()
    os._exit(0)  # skip interpreter teardown: candidate objects' __del__ must not run unwatched

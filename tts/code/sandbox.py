"""Run a candidate program against tests in a sandboxed subprocess; never in our own process.

`run_tests(program, tests)` starts `python -I tts/code/_sandbox_child.py` (the interpreter running tts)
and returns an `ExecReport`: one `TestOutcome` per test, passed / failed (an AssertionError) /
timeout / error (any other exception, the program not loading, the process dying).

What the sandbox does (Linux; each layer is best effort, none is a security boundary against
code written to escape it; run untrusted code from strangers in a container or VM as well):
- a fresh process group (a new session); on a timeout, and again after every run, the WHOLE
  group is SIGKILLed, so code that forks a helper leaves no orphan (a grandchild that calls
  setsid() itself leaves the group and is out of reach);
- `resource` limits set in the child before the candidate's code is compiled: CPU seconds,
  address space (`memory_mb`), file size, no core dumps;
- a per-test time limit twice over: SIGALRM in the child (raised as a BaseException, so
  `except Exception` does not swallow it), and a watchdog here that kills the group when no
  test finished within `timeout_s` plus a grace period (code that catches even that, or hangs
  in C, is killed; the tests after it run in a fresh process);
- a temporary directory as the working directory and HOME, removed afterwards; the file system
  is otherwise NOT restricted;
- no network: a new network namespace (`unshare --net`, with a user namespace when not root)
  when this machine allows it, which leaves the child no interface but a down loopback; always
  also the socket functions replaced by ones that raise, and proxies pointed at a closed port.
  `ExecReport.sandbox` says which layers were in force.
- stdin is closed, stdout is discarded, stderr goes to a file in the temp dir (bounded by the
  file-size limit); at most `os.cpu_count()` sandboxes run at once per event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Literal

from pydantic import Field

from tts.records import Record

TestStatus = Literal["passed", "failed", "timeout", "error"]
_CHILD = str(Path(__file__).resolve().parent / "_sandbox_child.py")
_STARTUP_GRACE_S = 3.0
"""Allowed on top of `timeout_s` between two events of the child (interpreter start-up on a busy machine)."""


class SandboxLimits(Record):
    timeout_s: float = Field(5.0, gt=0)
    """Wall-clock limit per test (and for loading the program)."""
    memory_mb: int = Field(1024, ge=64)
    """Address-space limit of the child process."""
    file_mb: int = Field(64, ge=1)
    """Largest file the child may write."""
    network: Literal["block"] = "block"


class TestOutcome(Record):
    test: int
    """Index of the test in the list run."""
    status: TestStatus
    detail: str = ""
    """The exception (type: message), or why the process was killed."""
    seconds: float = 0.0


class ExecReport(Record):
    outcomes: list[TestOutcome] = Field(default_factory=list)
    sandbox: str = ""
    """The isolation layers that were in force."""

    @property
    def passed(self) -> int:
        return sum(o.status == "passed" for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def pass_vector(self) -> list[int]:
        return [int(o.status == "passed") for o in self.outcomes]


_NET_PREFIX: list[str] | None = None


def network_isolation() -> list[str]:
    """The command prefix that puts the child in a new network namespace, or [] when this
    machine does not allow it (probed once per process)."""
    global _NET_PREFIX
    if _NET_PREFIX is None:
        _NET_PREFIX = []
        for prefix in (["unshare", "--net", "--"], ["unshare", "--user", "--map-root-user", "--net", "--"]):
            try:
                ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                _NET_PREFIX = prefix
                break
    return _NET_PREFIX


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _SLOTS:
        _SLOTS[loop] = asyncio.Semaphore(max(1, os.cpu_count() or 1))
    return _SLOTS[loop]


def _child_env(tmp: str) -> dict[str, str]:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, so a proxied request fails fast
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "http_proxy": closed, "https_proxy": closed, "all_proxy": closed,
           "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "ALL_PROXY": closed, "no_proxy": "", "NO_PROXY": ""}
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # some CPUs need these for numpy not to crash
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_events(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            break  # a line cut short by the kill
    return out


async def _run_child(job: dict, tmp: str, limits: SandboxLimits, prefix: list[str]) -> tuple[list[dict], str | None]:
    """One child process over `job`; its events and, when it did not finish, why (None if it did)."""
    results = Path(job["results"])
    job_path = Path(tmp) / f"job{job['start']}.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    with open(Path(tmp) / "stderr.txt", "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            *prefix, sys.executable, "-I", _CHILD, str(job_path), cwd=tmp, env=_child_env(tmp),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    killed = None
    try:
        seen, last = -1, time.monotonic()
        while True:
            try:
                await asyncio.wait_for(proc.wait(), timeout=0.05)
                break
            except TimeoutError:
                pass
            size = results.stat().st_size if results.exists() else 0
            now = time.monotonic()
            if size != seen:
                seen, last = size, now
            elif now - last > limits.timeout_s + _STARTUP_GRACE_S:
                killed = f"killed after {limits.timeout_s:g}s without progress (time limit)"
                _kill_group(proc.pid)
                await proc.wait()
                break
    finally:
        _kill_group(proc.pid)  # whatever the candidate left running in its group
        if proc.returncode is None:
            await proc.wait()
    events = _read_events(results)
    if killed is None:
        done = sum("i" in e for e in events)
        loaded = any("loaded" in e for e in events)
        if not loaded or job["start"] + done < len(job["tests"]):
            code = proc.returncode
            how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
            hint = " (CPU time limit)" if code == -signal.SIGXCPU or code == -signal.SIGKILL else \
                " (out of memory?)" if code == 1 else ""
            killed = f"the process died ({how}){hint}"
    return events, killed


async def run_tests(program: str, tests: list[str], *, setup: str = "", entry_point: str | None = None,
                    limits: SandboxLimits | None = None, network_namespace: bool = True) -> ExecReport:
    """Run `program`, then each test (Python source run in a copy of the program's namespace;
    with `entry_point`, the name `candidate` is bound to that function first, then `setup` runs).
    `network_namespace=False` skips the namespace even where it is available (tests of the fallback)."""
    limits = limits or SandboxLimits()
    prefix = network_isolation() if network_namespace else []
    layers = ["process group", f"rlimits (cpu, address space {limits.memory_mb} MiB, file size)", "temp dir",
              "network namespace + socket block" if prefix else "socket block only (no network namespace here)"]
    report = ExecReport(sandbox=", ".join(layers))
    if not tests:
        return report
    outcomes: dict[int, TestOutcome] = {}
    async with _slots():
        with tempfile.TemporaryDirectory(prefix="tts-exec-") as tmp:
            start = 0
            while start < len(tests):
                job = {"program": program, "tests": tests, "setup": setup, "entry_point": entry_point,
                       "start": start, "timeout_s": limits.timeout_s,
                       "cpu_seconds": int(limits.timeout_s * (len(tests) - start + 1)) + 1,
                       "memory_bytes": limits.memory_mb * 2**20, "file_bytes": limits.file_mb * 2**20,
                       "results": str(Path(tmp) / f"results{start}.jsonl")}
                events, died = await _run_child(job, tmp, limits, prefix)
                load = next((e for e in events if "loaded" in e), None)
                if (load is not None and not load["loaded"]) or (load is None and died is not None):
                    status = load["status"] if load else ("timeout" if "time limit" in died else "error")  # type: ignore[operator]
                    detail = f"the program did not load: {load['detail'] if load else died}"
                    outcomes.update({i: TestOutcome(test=i, status=status, detail=detail)
                                     for i in range(start, len(tests))})
                    break
                for e in events:
                    if "i" in e:
                        outcomes[e["i"]] = TestOutcome(test=e["i"], status=e["status"], detail=e["detail"],
                                                       seconds=round(e["seconds"], 4))
                nxt = start + sum("i" in e for e in events)
                if nxt >= len(tests) or died is None:
                    break
                status = "timeout" if "time limit" in died else "error"
                outcomes[nxt] = TestOutcome(test=nxt, status=status, detail=died)
                start = nxt + 1  # the rest run in a fresh process
    missing = [i for i in range(len(tests)) if i not in outcomes]
    for i in missing:  # defensive: never report fewer outcomes than tests
        outcomes[i] = TestOutcome(test=i, status="error", detail="no result from the sandbox")
    return report.model_copy(update={"outcomes": [outcomes[i] for i in range(len(tests))]})

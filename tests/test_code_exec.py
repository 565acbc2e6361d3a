"""The code-execution sandbox (tts.code.sandbox): pass, fail, an infinite loop killed within the limit
with no orphan process left, a memory bomb, a test that tries the network, a crash, and code
extraction from candidates."""

import asyncio
import os
import socket
import threading
import time

import pytest

from tts.code.code_task import build_program, extract_code
from tts.code.sandbox import SandboxLimits, run_tests
from tts.records import Task

PROGRAM = "def add(a, b):\n    return a + b\n"


async def test_passing_and_failing_tests_are_told_apart():
    report = await run_tests(PROGRAM, ["assert add(1, 2) == 3", "assert add(1, 2) == 4", "assert add(2, 2) == 4"])
    assert [o.status for o in report.outcomes] == ["passed", "failed", "passed"]
    assert report.passed == 2 and report.total == 3 and not report.all_passed
    assert report.outcomes[1].detail.startswith("AssertionError")


async def test_an_exception_is_an_error_and_a_broken_program_fails_every_test():
    report = await run_tests(PROGRAM, ["add(1)", "assert add(1, 1) == 2"])
    assert [o.status for o in report.outcomes] == ["error", "passed"]
    assert "TypeError" in report.outcomes[0].detail
    broken = await run_tests("def add(a, b) return a + b", ["assert add(1, 2) == 3", "assert True"])
    assert [o.status for o in broken.outcomes] == ["error", "error"]
    assert "SyntaxError" in broken.outcomes[0].detail


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


async def test_infinite_loop_is_killed_within_the_limit_and_leaves_no_orphan(tmp_path):
    pidfile = tmp_path / "helper.pid"
    # the candidate starts a helper process, then spins; `except BaseException: pass` swallows even
    # the in-process alarm, so only the watchdog's kill of the whole process group can end it
    hang = (f"import subprocess\np = subprocess.Popen(['sleep', '300'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
            "while True:\n    try:\n        while True: pass\n    except BaseException:\n        pass\n")
    limits = SandboxLimits(timeout_s=1.0)
    started = time.monotonic()
    report = await run_tests(PROGRAM, [hang, "assert add(2, 3) == 5"], limits=limits)
    elapsed = time.monotonic() - started
    assert [o.status for o in report.outcomes] == ["timeout", "passed"]  # the next test ran in a fresh process
    assert "time limit" in report.outcomes[0].detail
    assert elapsed < limits.timeout_s + 3.0 + 4.0  # the limit, the watchdog's grace, two interpreter start-ups
    helper = int(pidfile.read_text())
    for _ in range(50):  # SIGKILL is delivered asynchronously
        if not _alive(helper):
            break
        await asyncio.sleep(0.05)
    assert not _alive(helper), "the candidate's helper process outlived the sandbox"


async def test_plain_infinite_loop_hits_the_in_process_alarm_and_later_tests_still_run():
    started = time.monotonic()
    report = await run_tests(PROGRAM, ["while True: pass", "assert add(1, 1) == 2"],
                             limits=SandboxLimits(timeout_s=0.5))
    assert [o.status for o in report.outcomes] == ["timeout", "passed"]
    assert time.monotonic() - started < 5


async def test_memory_bomb_is_stopped_by_the_address_space_limit():
    bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))"
    report = await run_tests(PROGRAM, [bomb, "x = bytearray(2**34)", "assert add(0, 0) == 0"],
                             limits=SandboxLimits(timeout_s=20, memory_mb=256))
    assert [o.status for o in report.outcomes] == ["error", "error", "passed"]
    assert "MemoryError" in report.outcomes[1].detail


async def test_a_test_that_tries_the_network_cannot_reach_a_loopback_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        reach = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hi')"
        raw = f"import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))"
        report = await run_tests(PROGRAM, [reach, raw], limits=SandboxLimits(timeout_s=5))
        # the socket layer alone (no namespace), as on a machine without unshare
        alone = await run_tests(PROGRAM, [reach, raw], limits=SandboxLimits(timeout_s=5), network_namespace=False)
    finally:
        stop.set()
        thread.join(2)
        server.close()
    assert all(o.status == "error" for o in report.outcomes + alone.outcomes), report.outcomes + alone.outcomes
    assert "disabled in the tts sandbox" in alone.outcomes[1].detail
    assert accepted == [], "a sandboxed test connected to a server outside the sandbox"
    assert "network" in report.sandbox


async def test_a_crash_of_the_interpreter_is_an_error_and_the_rest_still_run():
    report = await run_tests(PROGRAM, ["import os\nos._exit(3)", "assert add(1, 2) == 3"])
    assert [o.status for o in report.outcomes] == ["error", "passed"]
    assert "exit code 3" in report.outcomes[0].detail


def test_extract_code_prefers_the_last_block_that_defines_the_entry_point():
    text = ("Here it is:\n```python\ndef add(a, b):\n    return a - b\n```\nFixed:\n```python\ndef add(a, b):\n"
            "    return a + b\n```\nUsage:\n```python\nprint(add(1, 2))\n```")
    assert extract_code(text, "add") == "def add(a, b):\n    return a + b"
    assert extract_code("```python\ndef f():\n    return 1\n", "f") == "def f():\n    return 1"  # unclosed fence
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1"


def test_build_program_appends_a_body_and_places_a_full_definition_after_the_prefix():
    task = Task(id="t", prompt="p", metadata={"code_prefix": "import math\n\ndef f(x):\n    \"\"\"doc\"\"\"\n",
                                              "tests": []})
    body = build_program(task, "    return math.sqrt(x)")
    assert body.endswith('"""doc"""\n    return math.sqrt(x)\n')
    full = build_program(task, "def f(x):\n    return 2")
    assert full.index("import math") < full.index("return 2")


@pytest.mark.parametrize("source,status", [("assert candidate(2) == 4", "passed"),
                                           ("assert candidate(2) == 5", "failed")])
async def test_entry_point_is_bound_as_candidate(source, status):
    report = await run_tests("def sq(x):\n    return x * x\n", [source], entry_point="sq")
    assert report.outcomes[0].status == status
    missing = await run_tests("x = 1\n", [source], entry_point="sq")
    assert missing.outcomes[0].status == "error" and "defines no function 'sq'" in missing.outcomes[0].detail

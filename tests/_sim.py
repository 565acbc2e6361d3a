"""The benchmarks' simulated server (`../shared/bench/simserver.py` beside the checkout, or
`$TTS_SIMSERVER`) on a free loopback port, for tests that check our figures against its /stats.
Tests that use it skip where it is absent (it is shared infrastructure, never copied here)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CANDIDATES = [os.environ.get("TTS_SIMSERVER", ""), str(_HERE.parents[1] / "shared/bench/simserver.py"),
               str(_HERE.parents[2] / "shared/bench/simserver.py")]
SIMSERVER = next((Path(p) for p in _CANDIDATES if p and Path(p).exists()), None)


def stats(base: str) -> dict:
    with urllib.request.urlopen(base.removesuffix("/v1") + "/stats", timeout=5) as r:
        return json.load(r)


def settled(base: str, timeout: float = 10.0) -> dict:
    """/stats once the server has nothing in flight (a hang-up is noticed at its next token)."""
    deadline = time.monotonic() + timeout
    while True:
        s = stats(base)
        if s["in_flight"] == 0 or time.monotonic() > deadline:
            return s
        time.sleep(0.02)


@contextlib.contextmanager
def simserver(*args: str) -> Iterator[str]:
    if SIMSERVER is None:
        import pytest

        pytest.skip("../shared/bench/simserver.py is absent (set $TTS_SIMSERVER to run this test)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SIMSERVER), "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(200):
            try:
                stats(base)
                break
            except OSError:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)

"""Start `../shared/bench/simserver.py` (or `$TTS_SIMSERVER`) on a free loopback port for a benchmark."""

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

SIMSERVER = Path(os.environ.get("TTS_SIMSERVER", Path(__file__).resolve().parents[2] / "shared/bench/simserver.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(base: str) -> dict:
    with urllib.request.urlopen(base.removesuffix("/v1") + "/stats", timeout=5) as r:
        return json.load(r)


@contextlib.contextmanager
def simserver(*args: str) -> Iterator[str]:
    """Yields the server's base URL (up to /v1); stops the process on exit."""
    if not SIMSERVER.exists():
        sys.exit(f"simserver not found at {SIMSERVER}; set TTS_SIMSERVER to its path")
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SIMSERVER), "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                stats(base)
                break
            except OSError:
                if proc.poll() is not None:
                    sys.exit(f"simserver exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

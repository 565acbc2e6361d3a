"""The benchmarks' simulated server (`benchmarks/_sim.py`: `../shared/bench/simserver.py` beside the
checkout, or `$TTS_SIMSERVER`) for tests that check our figures against its /stats. A test that
uses it skips where it is absent (it is shared infrastructure, never copied here)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from benchmarks._sim import SIMSERVER, stats
from benchmarks._sim import simserver as _simserver

__all__ = ["settled", "simserver", "stats"]


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
    if not SIMSERVER.exists():
        pytest.skip(f"simserver is absent at {SIMSERVER} (set $TTS_SIMSERVER to run this test)")
    with _simserver(*args) as base:
        yield base

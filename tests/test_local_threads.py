"""The embedded model's server decodes on the cores other processes leave idle, and follows them."""

from __future__ import annotations

import pytest

from tts.local import idle_cores


class Clock:
    """/proc/stat, the wall clock and this process's CPU time, as the test sets them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cores: int = 2) -> None:
        self.wall = self.own = self.busy = self.idle = 0.0
        self.tick = 100.0
        monkeypatch.setattr(idle_cores, "cores", lambda: cores)
        monkeypatch.setattr(idle_cores.os, "cpu_count", lambda: cores)
        monkeypatch.setattr(idle_cores.os, "sysconf", lambda name: self.tick)
        monkeypatch.setattr(idle_cores, "_cpu_jiffies", lambda: ((self.busy + self.idle) * self.tick,
                                                                 self.idle * self.tick))
        monkeypatch.setattr(idle_cores.time, "monotonic", lambda: self.wall)
        monkeypatch.setattr(idle_cores.time, "process_time", lambda: self.own)
        monkeypatch.setattr(idle_cores.time, "sleep", lambda s: self.spend(s, own=0.0, others=self.others))
        self.others = 0.0

    def spend(self, seconds: float, *, own: float, others: float, cores: int = 2) -> None:
        """`seconds` pass; this process keeps `own` cores busy and the others `others`."""
        self.wall += seconds
        self.own += own * seconds
        self.busy += (own + others) * seconds
        self.idle += (cores - own - others) * seconds


def test_the_server_starts_on_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    assert idle_cores.idle_now() == 2
    clock.others = 1.0  # one busy process beside us
    assert idle_cores.idle_now() == 1
    clock.others = 1.9
    assert idle_cores.idle_now() == 1  # never fewer than one


def test_the_threads_follow_what_other_processes_leave_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    tuner = idle_cores.ThreadTuner(2, every=1.0)
    clock.spend(0.5, own=2.0, others=0.0)
    assert tuner.due() is None  # not yet a second
    clock.spend(0.6, own=2.0, others=0.0)
    assert tuner.due() is None  # our own two busy threads are not somebody else's load
    clock.spend(1.01, own=1.3, others=0.7)  # another process takes most of a core from our two threads
    assert tuner.due() == 1 and tuner.threads == 1
    clock.spend(1.01, own=1.0, others=1.0)
    assert tuner.due() is None  # still busy elsewhere: stay on one
    clock.spend(1.01, own=1.0, others=0.0)
    assert tuner.due() == 2  # it is gone: both cores again

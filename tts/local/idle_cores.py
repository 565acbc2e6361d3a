"""How many cores the embedded model's server should decode on: the ones other processes leave idle.

llama.cpp's threads wait for each other at spin barriers after every operation, so a thread the
kernel takes off its core stalls all the others: on this 2-core machine, two threads decoded 3.5x
slower than one beside one busy process (and 20x at a load of 10), and one thread 1.6x slower than
two on an idle machine (measured). So the server starts on the idle cores and follows them while it
runs (`ThreadTuner`, llama.cpp's `llama_set_n_threads` between decodes).
"""

from __future__ import annotations

import os
import time

MAX_THREADS = 8


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_jiffies() -> tuple[float, float] | None:
    """(all, idle) time of every core since boot from /proc/stat, or None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:9]]  # guest time is already in user
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait


def _fit(busy_elsewhere: float) -> int:
    n = cores()
    return max(1, min(n, n - round(busy_elsewhere), MAX_THREADS))


def idle_now(window: float = 0.25) -> int:
    """Cores idle over the next `window` seconds (1 to 8). The 1-minute load average where there is
    no /proc; it lags a minute, so a run started just after another would see the last one's load."""
    before = _cpu_jiffies()
    if before is not None:
        time.sleep(window)
        after = _cpu_jiffies()
        if after is not None and after[0] > before[0]:
            spent, idle = after[0] - before[0], after[1] - before[1]
            return _fit((os.cpu_count() or 1) * (1 - idle / spent))
    try:
        return _fit(os.getloadavg()[0])
    except OSError:
        return _fit(0.0)


class ThreadTuner:
    """Between decodes, at most once per `every` seconds: the threads other processes leave room for
    (what all cores spent, minus what this process spent, is the others' share)."""

    def __init__(self, threads: int, every: float = 1.0) -> None:
        self.threads, self.every = threads, every
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        jiffies = _cpu_jiffies()
        if jiffies is None:
            return None
        return time.monotonic(), jiffies[0] - jiffies[1], time.process_time()

    def due(self) -> int | None:
        """The thread count to switch to now, or None to keep the current one."""
        if self._last is None or time.monotonic() - self._last[0] < self.every:
            return None
        now = self._sample()
        if now is None:
            return None
        wall = now[0] - self._last[0]
        busy_all = (now[1] - self._last[1]) / os.sysconf("SC_CLK_TCK")
        busy_elsewhere = max(0.0, busy_all - (now[2] - self._last[2])) / wall
        self._last = now
        fit = _fit(busy_elsewhere)
        if fit == self.threads:
            return None
        self.threads = fit
        return fit

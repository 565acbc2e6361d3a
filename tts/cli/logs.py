"""Log lines for the command line: written to whatever `sys.stderr` is when a record is emitted
(not the stream at set-up time, which a test harness or a notebook may have closed since), and
installed once per logger however often a command runs in one process. Every line passes through
the one redactor (`tts.redact`) on its way out, its traceback included."""

from __future__ import annotations

import logging
import sys

from tts.redact import redact


class CurrentStderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(redact(self.format(record)) + "\n")
            sys.stderr.flush()
        except Exception:  # a closed or broken stderr must not fail the command
            self.handleError(record)


def log_to_stderr(names: tuple[str, ...], formatter: logging.Formatter, level: int | None = None) -> None:
    """Send these loggers' records to stderr, one line each, through `formatter` (replacing the
    handler an earlier call installed)."""
    for name in names:
        lg = logging.getLogger(name)
        for old in [h for h in lg.handlers if isinstance(h, CurrentStderr)]:
            lg.removeHandler(old)
        handler = CurrentStderr()
        handler.setFormatter(formatter)
        lg.addHandler(handler)
        if level is not None:
            lg.setLevel(level)
        lg.propagate = False

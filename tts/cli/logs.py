"""Log lines for the command line: written to whatever `sys.stderr` is when a record is emitted
(not the stream at set-up time, which a test harness or a notebook may have closed since), and
installed once per logger however often a command runs in one process."""

from __future__ import annotations

import logging
import sys
from typing import Any


class CurrentStderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
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


class RedactingFormatter(logging.Formatter):
    """One line per record, with every secret `redact` knows replaced (see tts.serve.security.Redactor)."""

    def __init__(self, redact: Any) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))

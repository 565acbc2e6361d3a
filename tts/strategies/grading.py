"""Grades out of a grader's report: the LAST `Final Grade: X/7`-style line wins.

The format is configurable (`GradeFormat`: a regular expression with named groups `grade` and,
optionally, `max`, plus the maximum grade). Malformed output gives `None`, never an exception:
no match, a number out of range, or a denominator that is not the configured maximum.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import ConfigDict, field_validator

from tts.errors import ConfigError
from tts.records import Record

# "Final Grade: 7/7", "**Final Grade:** 5 / 7", "final grade = 6 out of 7", "FINAL GRADE: 3".
DEFAULT_PATTERN = (
    r"final[\s*_]*grade[\s*_]*[:=]?[\s*_]*(?P<grade>-?\d+(?:\.\d+)?)"
    r"(?:[\s*_]*(?:/|out\s+of)[\s*_]*(?P<max>\d+(?:\.\d+)?))?"
)


class GradeFormat(Record):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = DEFAULT_PATTERN
    """Regular expression with a named group `grade` (and optionally `max`); matched case-insensitively."""
    max_grade: float = 7.0
    """The top of the scale; a grade above it (or below 0) is malformed."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            rx = re.compile(v)
        except re.error as exc:
            raise ConfigError(f"grade pattern {v!r}: bad regular expression ({exc})") from None
        if "grade" not in rx.groupindex:
            raise ConfigError(f"grade pattern {v!r} needs a named group (?P<grade>...)")
        return v


class Grade(Record):
    """One parsed grade."""

    value: float
    max_grade: float
    line: str
    """The text that matched, for the trace."""

    @property
    def fraction(self) -> float:
        return self.value / self.max_grade if self.max_grade else 0.0


@lru_cache(maxsize=32)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def parse_grade(text: str | None, fmt: GradeFormat | None = None) -> Grade | None:
    """The last grade in `text` under `fmt`, or None when the output is malformed."""
    fmt = fmt or GradeFormat()
    if not text:
        return None
    matches = list(_rx(fmt.pattern).finditer(text))
    if not matches:
        return None
    last = matches[-1]
    try:
        value = float(last.group("grade"))
        denom = last.groupdict().get("max")
        if denom is not None and float(denom) != fmt.max_grade:
            return None  # graded on another scale: the grader did not follow the format
    except (TypeError, ValueError):
        return None
    if not 0 <= value <= fmt.max_grade:
        return None
    return Grade(value=value, max_grade=fmt.max_grade, line=last.group(0).strip())


_FEEDBACK_HEAD = re.compile(r"(?im)^[#*\s]*(areas?\s+for\s+improvement|issues|errors|gaps)\b.*$")


def feedback_of(report: str, fmt: GradeFormat | None = None) -> str:
    """What a solver should hear from a report: the "areas for improvement" section when there is
    one, else the whole report; the grade line itself is dropped either way."""
    head = _FEEDBACK_HEAD.search(report)
    body = report[head.start():] if head else report
    return _rx((fmt or GradeFormat()).pattern).sub("", body).strip()

"""Pull a short final answer out of a model's text and compare answers.

Formats: `last-number`, `boxed` (LaTeX \\boxed{...}), `answer-line` (a line "Answer: x"),
`regex:PATTERN` (group 1, or the whole match), and `auto` (answer-line, then boxed, then last
number, then the last non-empty line).
"""

from __future__ import annotations

import re
from functools import lru_cache

from tts.errors import ConfigError

FORMATS = ("auto", "last-number", "boxed", "answer-line")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_ANSWER_LINE = re.compile(r"(?im)^\s*(?:final\s+)?answer\s*[:=]\s*(.+?)\s*$")
_SPACES = re.compile(r"\s+")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def check_format(fmt: str) -> str:
    """Validate an answer format; raise ConfigError naming the allowed values."""
    if fmt in FORMATS:
        return fmt
    if fmt.startswith("regex:"):
        try:
            re.compile(fmt[6:])
        except re.error as exc:
            raise ConfigError(f"answer format {fmt!r}: bad regular expression ({exc})") from None
        return fmt
    raise ConfigError(f"unknown answer format {fmt!r}; use one of {', '.join(FORMATS)} or regex:PATTERN")


def _boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


def _last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def _answer_line(text: str) -> str | None:
    found = _ANSWER_LINE.findall(text)
    return found[-1] if found else None


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def extract_answer(text: str, fmt: str = "auto") -> str | None:
    """The answer in `text` under `fmt`, normalized, or None when there is none."""
    if fmt == "last-number":
        raw = _last_number(text)
    elif fmt == "boxed":
        raw = _boxed(text)
    elif fmt == "answer-line":
        raw = _answer_line(text)
    elif fmt.startswith("regex:"):
        matches = list(_compiled(fmt[6:]).finditer(text))
        m = matches[-1] if matches else None
        raw = None if m is None else (m.group(1) if m.groups() else m.group(0))
    elif fmt == "auto":
        raw = _answer_line(text) or _boxed(text)
        if raw is not None and (" " in raw.strip() or "=" in raw):
            raw = _last_number(raw) or raw  # "Answer: x = 5" -> 5, but "Answer: W0" stays W0
        if raw is None:
            raw = _last_number(text)
        if raw is None:
            lines = [ln for ln in text.strip().splitlines() if ln.strip()]
            raw = lines[-1] if lines else None
    else:
        check_format(fmt)
        raw = None
    return normalize(raw) if raw is not None else None


def normalize(answer: str) -> str:
    """A canonical form for voting: trimmed, lower-case, no trailing period, numbers canonical."""
    return _normalized(answer) if len(answer) <= 256 else _normalize(answer)


@lru_cache(maxsize=4096)
def _normalized(answer: str) -> str:
    """Short answers repeat (that is what a vote counts): each distinct one is worked out once."""
    return _normalize(answer)


def _normalize(answer: str) -> str:
    a = answer.strip().strip("$").strip().rstrip(".").strip()
    a = _SPACES.sub(" ", a).lower()
    num = a.replace(",", "")
    if _PLAIN_NUMBER.fullmatch(num):
        value = float(num)
        return str(int(value)) if value.is_integer() else repr(value)
    return a


def is_correct(answer: str | None, reference: str | None) -> bool | None:
    """None when there is no reference; else whether the normalized answers match."""
    if reference is None:
        return None
    if answer is None:
        return False
    return normalize(answer) == normalize(str(reference))

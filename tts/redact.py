"""The one redactor: every secret this process was given, replaced by `***` in whatever leaves it.

What it knows:
- every key a backend was built with (`api_key`, judge keys, a key in the `api_base` URL), the
  `tts serve --token`, and any flag named `--*api-key` / `--token` (`add_secret`, called where
  the secret is handed over: the backends, the server, the command line, the SWE agent runner);
- the values of the environment's key variables (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`:
  `OPENAI_API_KEY`, `TTS_AGENT_API_KEY` in a Ray worker, ...), read again whenever a secret is
  added (a backend is built) or an error is made, and at most a second old otherwise, so a key
  set later is covered too and writing a trace line does not scan the environment each time;
- keys it was never told, by their shape: `?key=...`-style query parameters, a password in a URL,
  `Bearer ...` and `x-api-key: ...` echoed back from headers, `"api_key": "..."` in JSON.

Strings under 8 characters (or all digits) are never treated as secrets: masking `local` or `x`
everywhere would blank out ordinary words, and such strings are not real keys.

Where it is applied (see docs/security.md): every `TTSError` message when it is made, call
records, run results, trace lines, result files, compare reports, SWE run-dir files, log lines,
`tts serve` responses and the CLI's error lines.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
MIN_SECRET_CHARS = 8
SECRET_ENV_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD")
"""Environment variables whose values are secrets (by the end of their name)."""

ENV_REFRESH_S = 1.0
_given: set[str] = set()
_lock = threading.Lock()
_known: tuple[float, tuple[str, ...]] = (float("-inf"), ())
"""(when, the secrets then): given ones and the environment's."""

_CREDENTIAL_PARAM = r"(?:api[_-]?key|key|token|access[_-]?token|auth|sig|signature|secret|client[_-]?secret|password)"
_SHAPES = (  # (substrings one of which must be in the lowercased text, the pattern, its replacement)
    (("?", "&", ";"), re.compile(rf"(?i)([?&;]{_CREDENTIAL_PARAM}=)[^&#\s\"'<>]+"), rf"\1{MASK}"),
    (("://",), re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@\"']*:)[^@/\s\"']+(@)"), rf"\1{MASK}\2"),
    (("bearer",), re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}"),
    (("api-key",), re.compile(r"(?i)(\b(?:x-)?(?:goog-)?api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]{8,}"), rf"\1{MASK}"),
    (("apikey", "api_key", "authorization", "password", "secret", "access_token"),
     re.compile(r'(?i)("(?:api_?key|authorization|password|secret|client_secret|access_token)"\s*:\s*")'
                     r'[^"]{8,}(")'), rf"\1{MASK}\2"),
)


def is_secret(value: Any) -> bool:
    """Long enough to be a key, and not a plain number."""
    return isinstance(value, str) and len(value.strip()) >= MIN_SECRET_CHARS and not value.strip().isdigit()


def add_secret(*values: str | None) -> None:
    """Remember these strings as secrets (short or empty ones are ignored)."""
    global _known
    new = {v.strip() for v in values if is_secret(v)} - _given  # type: ignore[union-attr]
    with _lock:
        _given.update(new)
        _known = (float("-inf"), ())  # read the environment again too: it may have new keys


def secrets_in_url(url: str | None) -> list[str]:
    """The credentials a URL carries: a password (`https://user:PASS@host`) and the values of
    key-like query parameters (`?key=...`)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if re.fullmatch(_CREDENTIAL_PARAM, k, re.I)]
    return [s for s in found if is_secret(s)]


def env_secrets(environ: Any = None) -> list[str]:
    """The values of the environment's key variables."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if k.upper().endswith(SECRET_ENV_SUFFIXES) and is_secret(v)]


def known_secrets(fresh: bool = False) -> tuple[str, ...]:
    """Every secret, the longest first; `fresh`: the environment read now, not up to a second ago."""
    global _known
    now = time.monotonic()
    when, secrets = _known
    if fresh or now - when > ENV_REFRESH_S:
        secrets = _ordered(frozenset(_given) | frozenset(env_secrets()))
        _known = (now, secrets)
    return secrets


@functools.lru_cache(maxsize=64)
def _ordered(secrets: frozenset[str]) -> tuple[str, ...]:
    # the longest first, so a key that contains another is masked whole
    return tuple(sorted((s.strip() for s in secrets), key=len, reverse=True))


def redact(text: Any, *, fresh: bool = False) -> str:
    """`text` (made a string) with every known secret, and every credential-shaped substring, masked.
    `fresh`: read the environment now (an error message: rare, and the first place a key shows up)."""
    out = text if isinstance(text, str) else str(text)
    for secret in known_secrets(fresh):
        if secret in out:
            out = out.replace(secret, MASK)
    low = out.lower()
    for probes, pattern, repl in _SHAPES:
        if any(p in low for p in probes):
            out = pattern.sub(repl, out)
    return out


def forget_secrets() -> None:
    """Forget every secret given with `add_secret` (for tests)."""
    global _known
    with _lock:
        _given.clear()
        _known = (float("-inf"), ())

"""Who may call `tts serve`, how big a request may be, and keeping secrets out of what it says.

- Loopback by default; binding any other address needs a token (`check_bind`).
- With a token, every route but `/health` wants `Authorization: Bearer <token>` or
  `x-api-key: <token>` (401 otherwise, compared in constant time).
- Request bodies over the limit are refused with 413 by aiohttp itself (`client_max_size`).
- Secrets (upstream API keys, the token) are kept out of what it sends and logs by the one
  redactor every surface shares, `tts.redact` (a provider's error can quote the key it was sent).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from tts.errors import ConfigError

OPEN_PATHS = ("/health",)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_bind(host: str, token: str | None) -> None:
    """ConfigError (one line) when `host` is reachable from other machines and no token guards it."""
    if not is_loopback(host) and not token:
        raise ConfigError(f"--host {host} is not a loopback address: anyone who can reach it could spend your "
                          f"API budget; add --token TOKEN (or set TTS_SERVE_TOKEN), or bind 127.0.0.1")


def token_ok(headers: Any, token: str) -> bool:
    """The token as `Authorization: Bearer` (OpenAI clients) or as `x-api-key` (Anthropic clients)."""
    key = headers.get("x-api-key")
    if key and hmac.compare_digest(key.strip().encode(), token.encode()):
        return True
    return bearer_ok(headers.get("Authorization"), token)


def bearer_ok(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


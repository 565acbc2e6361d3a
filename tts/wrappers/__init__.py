"""Backend wrappers: each takes a backend and is one. `tts.build.make_backend` stacks them in order."""

from tts.wrappers.accounting import AccountingBackend
from tts.wrappers.cache import CacheBackend
from tts.wrappers.retry import RetryBackend
from tts.wrappers.throttle import ThrottleBackend

__all__ = ["AccountingBackend", "CacheBackend", "RetryBackend", "ThrottleBackend"]

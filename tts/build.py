"""`make_backend`: the one way to get a ready backend, with every wrapper in its place.

The stack, outside in:

    CacheBackend      a hit skips everything below: no slot, no retry, no budget, no cost; a call
                      that needed retries is stored once, after it finally succeeds.
    RetryBackend      outside the throttle, so a call sleeping in backoff holds no slot, and every
                      attempt is throttled again (rpm/tpm count each request the server sees).
                      The per-call timeout is paused while a call waits for a slot.
    ThrottleBackend   in-flight slots, requests and tokens per minute.
    AccountingBackend inside the throttle, so caps are checked at the moment a request is sent,
                      against the latest totals (not when it joined the queue, which could be long
                      before), and each attempt that was answered (paid) is counted. Cache hits
                      never reach it; the cache reports them to it (`on_hit`) as free cached calls.
    base backend      LiteLLMBackend, OpenAIHTTPBackend, or the embedded local model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict, Unpack

from tts.errors import ConfigError
from tts.seam import Backend, BackendWrapper, require_namespace

BACKENDS = ("litellm", "openai")


def make_base_backend(model: str, *, backend: str = "litellm", api_base: str | None = None,
                      api_key: str | None = None, timeout: float | None = 120.0) -> Any:
    """The backend that talks to the model, without wrappers."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if model == "local":
        from tts.local import LocalBackend

        return LocalBackend()
    if backend == "openai":
        if not api_base:
            raise ConfigError("backend 'openai' needs api_base (--api-base), the server's URL up to /v1")
        from tts.backends.openai_http import OpenAIHTTPBackend

        return OpenAIHTTPBackend(model, api_base, api_key=api_key, timeout=timeout)
    from tts.backends.litellm import LiteLLMBackend

    return LiteLLMBackend(model, api_base=api_base, api_key=api_key, timeout=timeout)


class StackOptions(TypedDict, total=False):
    """The wrappers' options, shared by `make_backend` and `stack_wrappers` (defaults in `STACK_DEFAULTS`)."""

    cache_dir: str | Path | None
    """diskcache directory; None: no cache."""
    retries: int
    """How many times a failed call is tried again (0: never)."""
    timeout: float | None
    """Per attempt, in seconds, counted from when the request is sent."""
    concurrency: int
    """Calls in flight at most."""
    rpm: float | None
    tpm: float | None
    max_calls: int | None
    max_tokens_total: int | None
    max_cost: float | None
    """Hard caps: reaching one raises BudgetExceeded (with the partial result)."""
    pricing: bool
    """Look up the USD cost of each call (litellm's price list)."""
    share_budget_with: Backend | None
    """Another backend from `make_backend` (e.g. the solver's, when this is a separate judge model)
    whose caps this one also obeys and whose totals it adds to, so the run has one budget."""


STACK_DEFAULTS: dict[str, Any] = {
    "cache_dir": None, "retries": 8, "timeout": 120.0, "concurrency": 64, "rpm": None, "tpm": None,
    "max_calls": None, "max_tokens_total": None, "max_cost": None, "pricing": True, "share_budget_with": None,
}


def make_backend(model: str, *, backend: str = "litellm", api_base: str | None = None, api_key: str | None = None,
                 **options: Unpack[StackOptions]) -> Backend:
    """A backend for `model` with cache (when `cache_dir` is given), retries, throttle and accounting.

    `model="local"` is the embedded SmolLM2 server, started on first use. `backend="openai"` is the
    lean aiohttp client for an OpenAI-compatible server at `api_base`; `"litellm"` takes any litellm
    model string. The wrappers' options are `StackOptions` (retries=8, timeout=120, concurrency=64,
    caps off, no cache by default). Find a layer with `.find()`, e.g.
    `make_backend(...).find(AccountingBackend).usage`.
    """
    opts = stack_options(options)
    base = make_base_backend(model, backend=backend, api_base=api_base, api_key=api_key, timeout=opts["timeout"])
    return stack_wrappers(base, **options)


def stack_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` over the defaults, checked: ConfigError naming an unknown or bad option."""
    unknown = sorted(set(options) - set(STACK_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown backend option {unknown[0]!r}; allowed: {', '.join(STACK_DEFAULTS)}")
    opts = {**STACK_DEFAULTS, **options}
    if opts["retries"] < 0:
        raise ConfigError(f"retries must be 0 or more, not {opts['retries']}")
    if opts["concurrency"] < 1:
        raise ConfigError(f"concurrency must be at least 1, not {opts['concurrency']}")
    return opts


def stack_wrappers(base: Backend, **options: Unpack[StackOptions]) -> Backend:
    """The wrappers of `make_backend` around a backend of your own (order: see the module docstring)."""
    from tts.wrappers.accounting import AccountingBackend
    from tts.wrappers.cache import CacheBackend
    from tts.wrappers.retry import RetryBackend
    from tts.wrappers.throttle import ThrottleBackend

    o = stack_options(dict(options))
    require_namespace(base)  # part of the contract: the cache keys on it, now or when one is added
    share = o["share_budget_with"]
    shared = share.find(AccountingBackend) if isinstance(share, BackendWrapper) else None
    accounting = AccountingBackend(base, max_calls=o["max_calls"], max_tokens=o["max_tokens_total"],
                                   max_cost_usd=o["max_cost"], pricing=o["pricing"], shared=shared)
    stack: Any = ThrottleBackend(accounting, concurrency=o["concurrency"], rpm=o["rpm"], tpm=o["tpm"])
    stack = RetryBackend(stack, max_attempts=o["retries"] + 1, timeout=o["timeout"])
    if o["cache_dir"] is not None:
        stack = CacheBackend(stack, o["cache_dir"], on_hit=accounting.record)
    return stack

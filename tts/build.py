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
from typing import Any

from tts.backend import Backend, BackendWrapper, require_namespace
from tts.errors import ConfigError

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


def make_backend(
    model: str,
    *,
    backend: str = "litellm",
    api_base: str | None = None,
    api_key: str | None = None,
    cache_dir: str | Path | None = None,
    retries: int = 8,
    timeout: float | None = 120.0,
    concurrency: int = 64,
    rpm: float | None = None,
    tpm: float | None = None,
    max_calls: int | None = None,
    max_tokens_total: int | None = None,
    max_cost: float | None = None,
    share_budget_with: Backend | None = None,
) -> Backend:
    """A backend for `model` with cache (when `cache_dir` is given), retries, throttle and accounting.

    `model="local"` is the embedded SmolLM2 server, started on first use. `backend="openai"` is the
    lean aiohttp client for an OpenAI-compatible server at `api_base`; `"litellm"` takes any litellm
    model string. `retries` is how many times a failed call is tried again (0: never); `timeout` is
    per attempt, in seconds, counted from when the request is sent. Find a layer with `.find()`,
    e.g. `make_backend(...).find(AccountingBackend).usage`. `share_budget_with`: another backend
    from `make_backend` (e.g. the solver's, when this is a separate judge model) whose caps this one
    also obeys and whose totals it adds to, so the run has one budget.
    """
    if retries < 0:
        raise ConfigError(f"retries must be 0 or more, not {retries}")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    base = make_base_backend(model, backend=backend, api_base=api_base, api_key=api_key, timeout=timeout)
    return stack_wrappers(base, cache_dir=cache_dir, retries=retries, timeout=timeout, concurrency=concurrency,
                          rpm=rpm, tpm=tpm, max_calls=max_calls, max_tokens_total=max_tokens_total, max_cost=max_cost,
                          share_budget_with=share_budget_with)


def stack_wrappers(
    base: Backend,
    *,
    cache_dir: str | Path | None = None,
    retries: int = 8,
    timeout: float | None = 120.0,
    concurrency: int = 64,
    rpm: float | None = None,
    tpm: float | None = None,
    max_calls: int | None = None,
    max_tokens_total: int | None = None,
    max_cost: float | None = None,
    pricing: bool = True,
    share_budget_with: Backend | None = None,
) -> Backend:
    """The wrappers of `make_backend` around a backend of your own (order: see the module docstring)."""
    from tts.wrappers.accounting import AccountingBackend
    from tts.wrappers.cache import CacheBackend
    from tts.wrappers.retry import RetryBackend
    from tts.wrappers.throttle import ThrottleBackend

    require_namespace(base)  # part of the contract: the cache keys on it, now or when one is added
    shared = share_budget_with.find(AccountingBackend) if isinstance(share_budget_with, BackendWrapper) else None
    accounting = AccountingBackend(base, max_calls=max_calls, max_tokens=max_tokens_total, max_cost_usd=max_cost,
                                   pricing=pricing, shared=shared)
    stack: Any = ThrottleBackend(accounting, concurrency=concurrency, rpm=rpm, tpm=tpm)
    stack = RetryBackend(stack, max_attempts=retries + 1, timeout=timeout)
    if cache_dir is not None:
        stack = CacheBackend(stack, cache_dir, on_hit=accounting.record)
    return stack

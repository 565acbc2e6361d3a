"""Any litellm model string, through `litellm.acompletion`.

litellm is imported on first use (see `tts._litellm`: offline-safe, env untouched). Its own
retries are off (`num_retries=0`, `max_retries=0`): retrying is `RetryBackend`'s job, and two
retry loops stacked would multiply attempts. Its exceptions are mapped onto our error tree.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from typing import Any

from tts._litellm import import_litellm
from tts.backends._common import REJECTED, error_for_status, parse_chat, retry_after_from_headers
from tts.backends.streaming import STREAM_OPTIONS, StreamAccumulator, StreamTally
from tts.errors import (
    AuthError,
    BackendError,
    CallTimeout,
    ConfigError,
    ConnectionFailed,
    MalformedResponse,
    PermanentError,
    RateLimited,
    ServerError,
)
from tts.records import Completion
from tts.redact import add_secret, is_secret, secrets_in_url
from tts.seam import ChatRequest
from tts.wrappers.throttle import answer_received


class LiteLLMBackend:
    """`LiteLLMBackend("gpt-4o-mini")`, `LiteLLMBackend("openai/my-model", api_base="http://host:8000/v1")`.

    Extra keyword arguments go to every `litellm.acompletion` call unchanged.
    """

    def __init__(self, model: str, api_base: str | None = None, api_key: str | None = None,
                 timeout: float | None = 120.0, **extra: Any) -> None:
        self.model = model
        self.api_base = api_base
        self.timeout = timeout
        self._litellm = import_litellm()
        self._supports_n: bool | None = None
        self._closers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        """Per event loop: closes litellm's clients of that loop when it shuts down."""
        self.streams = StreamTally()
        self._kwargs: dict[str, Any] = {"model": model, "num_retries": 0, "max_retries": 0, **extra}
        # never in an error, record or log line (tts.redact): the key, one in the URL, and any extra credential
        add_secret(api_key, *secrets_in_url(api_base),
                   *(v for k, v in extra.items() if is_secret(v) and k.endswith(("key", "token", "secret"))))
        if api_base:
            self._kwargs["api_base"] = api_base
        if api_key:
            self._kwargs["api_key"] = api_key
        if timeout is not None:
            self._kwargs["timeout"] = timeout
        missing = [] if api_key else self._missing_keys()
        if missing and api_base:
            # A self-hosted server usually wants no key, but the openai client refuses to send
            # without one: give it a placeholder (a server that does check answers 401: AuthError).
            self._kwargs["api_key"] = "no-key"
        elif missing:
            names = " and ".join(missing)
            raise ConfigError(f"model {model!r} needs {names}; set it in the environment or pass --api-key")

    def _missing_keys(self) -> list[str]:
        """The environment variables litellm wants for this model and cannot find."""
        try:
            env = self._litellm.validate_environment(model=self.model)
        except Exception:  # litellm cannot tell (unknown provider): let the call itself decide
            return []
        return list(env.get("missing_keys") or [])

    @property
    def supports_n(self) -> bool:
        """Whether litellm sends `n` to this provider (not to Anthropic, for one)."""
        if self._supports_n is None:
            try:
                params = self._litellm.get_supported_openai_params(model=self.model) or []
            except Exception:  # unknown provider: try, and notice a short answer (tts.batching)
                params = ["n"]
            self._supports_n = "n" in params
        return self._supports_n

    @supports_n.setter
    def supports_n(self, value: bool) -> None:
        self._supports_n = value

    @property
    def namespace(self) -> str:
        return f"litellm:{self.api_base or ''}:{self.model}"

    def __repr__(self) -> str:
        return f"LiteLLMBackend(model={self.model!r}, api_base={self.api_base!r})"

    async def complete(self, request: ChatRequest) -> list[Completion]:
        litellm = self._litellm
        loop = asyncio.get_running_loop()
        if loop not in self._closers:  # litellm caches its HTTP clients per loop: close them at the loop's end
            self._closers[loop] = closer = _close_clients_at_loop_end(litellm)
            await closer.__anext__()
        started = time.perf_counter()
        if request.on_token is not None:
            return [await self._stream(request, started)]
        try:
            response = await litellm.acompletion(
                messages=[m.to_api() for m in request.messages], **self._kwargs, **request.sampling_params())
        except BackendError:
            raise
        except Exception as exc:
            mapped = map_litellm_error(exc, litellm, self.api_base)
            if mapped is None:
                raise
            # not chained: litellm's exception may quote the key; ours has its text, redacted
            raise mapped from None
        latency = time.perf_counter() - started
        answer_received()  # the server is done with this call: its slot goes to the next one first
        return self.streams.learn_reply(request, parse_chat(response, request, latency, self.model,
                                                            lambda: "what litellm returned"))

    async def _stream(self, request: ChatRequest, started: float) -> Completion:
        """The reply as litellm's stream, fed to the caller chunk by chunk; closed (its HTTP
        response with it) as soon as the caller says stop."""
        acc = StreamAccumulator(request, self.model, self.streams)
        stopped = False
        response: Any = None
        try:
            response = await self._litellm.acompletion(
                messages=[m.to_api() for m in request.messages], **self._kwargs, **request.sampling_params(),
                stream=True, stream_options=STREAM_OPTIONS)
            async for chunk in response:
                if acc.feed(chunk):
                    stopped = True
                    break
        except BackendError:
            raise
        except Exception as exc:
            mapped = map_litellm_error(exc, self._litellm, self.api_base)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if response is not None and (stopped or acc.finish is None):
                await response.aclose()
        answer_received()
        return acc.completion(time.perf_counter() - started, stopped)

    async def aclose(self) -> None:
        """Release what litellm opened for our calls: its cached HTTP clients (httpx pools, aiohttp
        sessions) are closed and the cache emptied (so a later call, by any backend, opens fresh
        ones instead of finding closed ones), and its logging worker task is flushed and stopped."""
        await close_litellm(self._litellm)


async def close_litellm(litellm: Any) -> None:
    """Close litellm's process-wide async clients and stop its logging worker (each step only
    when this litellm version has it)."""
    await close_litellm_clients(litellm)
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except ImportError:
        return
    try:  # let queued success callbacks (the user's, if any) run, briefly, then stop the worker
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), 2.0)
    except (TimeoutError, Exception):
        pass
    await GLOBAL_LOGGING_WORKER.stop()


async def _close_clients_at_loop_end(litellm: Any) -> Any:
    """Finalized by the loop's shutdown (`asyncio.run`'s end) while it still runs: the clients
    litellm opened on it are closed, so a backend used from several loops leaves no socket open."""
    try:
        yield
    finally:
        await close_litellm_clients(litellm)


async def close_litellm_clients(litellm: Any) -> None:
    """Close litellm's cached async clients and empty the cache (a later call opens fresh ones)."""
    try:
        from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients
    except ImportError:
        close_litellm_async_clients = None
    if close_litellm_async_clients is not None:
        await close_litellm_async_clients()
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    flush_cache = getattr(cache, "flush_cache", None)
    if callable(flush_cache):
        flush_cache()


def _connection_failure(exc: BaseException) -> str | None:
    """The reason when `exc` was caused by failing to reach the server (refused, no route, DNS)."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 12:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return "connection refused"
    for c in chain:
        if type(c).__name__ in ("gaierror", "ClientConnectorDNSError"):
            return f"cannot resolve the host ({c})"
        if type(c).__name__ in ("ConnectError", "ClientConnectorError"):
            return str(c) or "connection failed"
    return None


def map_litellm_error(exc: BaseException, litellm: Any, api_base: str | None = None) -> BackendError | None:
    """Our error for a litellm (or openai SDK) exception; None for anything that is not a call failure."""
    E = litellm.exceptions
    msg = f"{type(exc).__name__}: {exc}"
    status = getattr(exc, "status_code", None)
    refused = _connection_failure(exc)
    if refused is not None:  # litellm reports these as InternalServerError "Connection error."
        return ConnectionFailed(f"cannot connect to {api_base or 'the provider'}: {refused}")
    # Order matters: Timeout is an APIConnectionError, the validation errors are APIErrors.
    if isinstance(exc, E.Timeout):
        return CallTimeout(msg, status=status)
    if isinstance(exc, E.RateLimitError):
        headers = getattr(exc, "litellm_response_headers", None)
        if headers is None:
            headers = getattr(getattr(exc, "response", None), "headers", None)
        return RateLimited(msg, retry_after=retry_after_from_headers(headers))
    if "Missing credentials" in str(exc):
        return AuthError(msg, status=status)
    if isinstance(exc, E.AuthenticationError | E.PermissionDeniedError):
        return AuthError(f"{REJECTED}: {msg}", status=status)
    if isinstance(exc, E.APIConnectionError):
        return ConnectionFailed(msg, status=status)
    if isinstance(exc, E.APIResponseValidationError | json.JSONDecodeError):
        return MalformedResponse(msg, status=status)
    if isinstance(exc, E.InternalServerError | E.ServiceUnavailableError | E.BadGatewayError):
        return ServerError(msg, status=status)
    if isinstance(exc, E.BadRequestError | E.NotFoundError | E.UnprocessableEntityError):
        return PermanentError(msg, status=status)
    if isinstance(status, int) and status >= 400:
        return error_for_status(status, msg, getattr(exc, "litellm_response_headers", None))
    if isinstance(exc, E.APIError | E.OpenAIError):
        return ServerError(msg, status=status)
    return None


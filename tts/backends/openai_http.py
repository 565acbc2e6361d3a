"""A lean OpenAI-compatible chat-completions client over aiohttp: the fast path for self-hosted
servers (vLLM, SGLang, llama.cpp) and the simulated server of the benchmarks.

It does one thing: send one request and turn the answer (or the failure) into `Completion`s or a
typed `BackendError`. Retries, throttling, caching and accounting are wrappers; in particular the
connection pool is unbounded here, because how many calls are in flight is the throttle's job.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tts.backends._common import error_for_status, parse_chat, short
from tts.backends.streaming import STREAM_OPTIONS, StreamAccumulator, StreamTally
from tts.errors import CallTimeout, ConnectionFailed, MalformedResponse
from tts.records import Completion
from tts.redact import add_secret, secrets_in_url
from tts.seam import ChatRequest
from tts.wrappers.throttle import answer_received


class OpenAIHTTPBackend:
    """`POST {api_base}/chat/completions`. `api_base` is the URL up to `/v1`, as for the openai SDK."""

    supports_n = True
    """Sends `n` as asked (vLLM, SGLang, OpenAI honour it); a server that answers fewer choices is
    noticed and then asked one sample per request (tts.batching)."""

    def __init__(self, model: str, api_base: str, api_key: str | None = None, timeout: float | None = 120.0) -> None:
        import aiohttp  # noqa: F401  (imported with the backend, not on its first call: a run's first wave stays cheap)

        self.model = model
        self.api_base = api_base.rstrip("/")
        self.url = self.api_base + "/chat/completions"
        self.timeout = timeout
        self._headers: dict[str, str] = {}  # the body's Content-Type comes with it (`_json_body`)
        add_secret(api_key, *secrets_in_url(api_base))  # never in an error, record or log line (tts.redact)
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: Any = None
        """Closes the session when its event loop shuts down (see `_close_at_loop_end`)."""
        self.streams = StreamTally()

    @property
    def bounds_requests(self) -> float | None:
        """Each request's time limit, counted from when it is sent (the session's total timeout),
        so a RetryBackend with the same per-call timeout needs no timer of its own."""
        return self.timeout

    @property
    def namespace(self) -> str:
        return f"openai:{self.api_base}:{self.model}"

    def __repr__(self) -> str:
        return f"OpenAIHTTPBackend(model={self.model!r}, api_base={self.api_base!r})"

    def _get_session(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            import aiohttp

            # One session per backend and event loop; a session from a finished loop is dropped.
            self._closer = None  # the old loop's closer closed (or will close) the old session
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self._headers,
            )
            self._loop = loop
        return self._session

    async def _session_here(self) -> Any:
        """This loop's session, closed when the loop shuts down (see `_close_at_loop_end`)."""
        session = self._get_session()
        if self._closer is None:
            self._closer = _close_at_loop_end(session)
            await self._closer.__anext__()
        return session

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [m.to_api() for m in request.messages]}
        body.update(request.sampling_params())
        return body

    async def complete(self, request: ChatRequest) -> list[Completion]:
        if request.on_token is not None:
            return [await self._stream(request)]
        import aiohttp

        session = self._get_session()
        if self._closer is None:  # a new session: set it to close when this loop ends
            await self._session_here()
        data = _json_body(self.payload(request))
        started = time.perf_counter()
        try:
            async with session.post(self.url, data=data) as resp:
                raw = await resp.read()
                status = resp.status
                if status >= 400:
                    raise error_for_status(status, f"HTTP {status} from {self.url}: {_error_message(raw)}",
                                           resp.headers)
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
            raise CallTimeout(f"no answer from {self.url} within {self.timeout} s") from exc
        except aiohttp.ClientPayloadError as exc:
            raise MalformedResponse(f"truncated body from {self.url}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionFailed(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from exc
        latency = time.perf_counter() - started
        answer_received()  # the server is done with this call: its slot goes to the next one first
        try:
            body = _loads(raw)
        except ValueError as exc:
            raise MalformedResponse(f"unparseable body from {self.url}: {short(raw)!r}") from exc
        return self.streams.learn_reply(request, parse_chat_body(body, request, latency, self.model, raw))

    async def _stream(self, request: ChatRequest) -> Completion:
        """The reply as SSE, fed to the caller chunk by chunk; closed as soon as it says stop."""
        import aiohttp

        session = await self._session_here()
        acc = StreamAccumulator(request, self.model, self.streams)
        data = _json_body({**self.payload(request), "stream": True, "stream_options": STREAM_OPTIONS})
        started = time.perf_counter()
        stopped = False
        try:
            async with session.post(self.url, data=data) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    raise error_for_status(resp.status, f"HTTP {resp.status} from {self.url}: {_error_message(raw)}",
                                           resp.headers)
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        break
                    try:
                        chunk = json.loads(payload)
                    except ValueError as exc:
                        raise MalformedResponse(f"bad stream chunk from {self.url}: {short(payload)!r}") from exc
                    if acc.feed(chunk):
                        stopped = not await _hang_up(acc, resp)
                        break
        except TimeoutError as exc:
            raise CallTimeout(f"no answer from {self.url} within {self.timeout} s") from exc
        except aiohttp.ClientPayloadError as exc:
            raise MalformedResponse(f"truncated stream from {self.url}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionFailed(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from exc
        answer_received()
        return acc.completion(time.perf_counter() - started, stopped)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except RuntimeError:  # its event loop is gone; nothing left to close
                pass


async def _close_at_loop_end(session: Any) -> Any:
    """An async generator started once per session: asyncio's loop shutdown (`asyncio.run`'s end,
    `loop.shutdown_asyncgens`) finalizes it while the loop still runs, which closes the session
    cleanly. So a backend used from several `asyncio.run` calls leaves no session unclosed."""
    try:
        yield
    finally:
        if not session.closed:
            await session.close()
HANG_UP_GRACE_S = 1.0
"""After a stop, how long the tokens still on their way are read (and counted) before the connection is dropped."""


async def _hang_up(acc: StreamAccumulator, resp: Any) -> bool:
    """Stop a stream: half-close the connection (the server sees end-of-input and stops
    generating), read and count the tokens it sent before it noticed (they are billed), and drop
    the connection. True when the reply turned out to be complete anyway."""
    transport = getattr(resp.connection, "transport", None) if resp.connection is not None else None
    done = False
    try:
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
            async with asyncio.timeout(HANG_UP_GRACE_S):
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return True
                    acc.feed(json.loads(payload), watch=False)
                    done = done or acc.finish is not None
    except (TimeoutError, ValueError, OSError, Exception):  # whatever did not arrive in time is not ours to count
        pass
    finally:
        resp.close()
    return done


def _json_body(body: dict[str, Any]) -> Any:
    """A request body as aiohttp sends it, typed as JSON (built here: aiohttp's look-up of a payload
    type for bytes, and a default header merged into every request, cost more than the JSON)."""
    import aiohttp

    return aiohttp.BytesPayload(json.dumps(body).encode(), content_type="application/json")


def _loads(raw: bytes) -> Any:
    """A body's JSON, read as UTF-8 (what JSON bodies are; `json.loads(bytes)` sniffs the encoding
    first), else in whatever encoding json finds."""
    try:
        return json.loads(raw.decode())
    except ValueError:
        return json.loads(raw)


def _error_message(raw: bytes) -> str:
    try:
        err = json.loads(raw).get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if err:
            return str(err)
    except (ValueError, AttributeError):
        pass
    return short(raw)


def parse_chat_body(body: Any, request: ChatRequest, latency: float, model: str, raw: bytes = b"") -> list[Completion]:
    """An OpenAI chat-completion JSON body -> one `Completion` per choice (MalformedResponse if it is not one)."""
    return parse_chat(body, request, latency, model, lambda: f"body {short(raw or str(body))!r}")

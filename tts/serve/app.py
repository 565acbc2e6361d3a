"""`TTSServer`: the aiohttp application behind `tts serve`, usable in-process too.

    async with TTSServer(strategy, make_backend("gpt-4o-mini"), model="gpt-4o-mini") as server:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="unused")

Routes: `POST /v1/chat/completions` (and `/chat/completions`), `GET /v1/models`, `GET /health`, and
translated over the chat path (`tts.serve.wire`): `POST /v1/responses`, `/v1/messages(/count_tokens)`.
Every request runs its strategy over the one shared backend stack (cache, throttle, server-wide
budget) through thin per-request layers (its own budget, progress; `tts.serve.request`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tts.context import SamplingDefaults
from tts.errors import RequestError
from tts.records import RunResult
from tts.redact import add_secret, redact
from tts.seam import Backend
from tts.serve import stream
from tts.serve.conversation import Progress
from tts.serve.convert import ServeRequest, parse_request, strategy_for
from tts.serve.messages import MessagesWire
from tts.serve.request import classify_error, planned, run_request
from tts.serve.respond import chunks, completion_body, error_body, tts_object
from tts.serve.responses import ResponsesWire
from tts.serve.security import OPEN_PATHS, token_ok
from tts.serve.wire import CHAT, Wire, mapped_model
from tts.serve.wire_route import count_tokens, serve_wire, wire_error

log = logging.getLogger("tts.serve")

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_MODELS = 16
"""Distinct upstream models one server will open stacks for (each has its own throttle)."""


class TTSServer:
    """An OpenAI-compatible endpoint whose answers come from `strategy` (overridable per request).

    `backend`: the shared stack for `model` (from `make_backend`). `backends`: extra roles, e.g.
    `{"judge": ...}`. `backend_for_model`: makes a stack for another upstream model a request
    names (None: every request goes to `model`). `secrets` (upstream keys) and the token join the
    process's one redactor (`tts.redact`), which also knows every key a backend was built with.
    """

    def __init__(self, strategy: Any, backend: Backend, *, model: str, backends: dict[str, Backend] | None = None,
                 backend_for_model: Callable[[str], Backend] | None = None,
                 defaults: SamplingDefaults | None = None, token: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, trace_dir: str | Path | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 keepalive_s: float = 5.0, shutdown_timeout: float = 10.0, secrets: tuple[str | None, ...] = (),
                 model_map: dict[str, str] | None = None) -> None:
        self.strategy = strategy
        self.backend = backend
        self.model = model
        self.backends = dict(backends or {})
        self.backend_for_model = backend_for_model
        self.defaults = defaults or SamplingDefaults(temperature=None, max_tokens=None)
        self.token = token
        self.host, self.port = host, port
        self.trace_dir = Path(trace_dir) if trace_dir else None
        self.max_body_bytes = max_body_bytes
        self.keepalive_s = keepalive_s
        self.shutdown_timeout = shutdown_timeout
        add_secret(*secrets, token)
        self.redact = redact
        self.model_stacks: dict[str, Backend] = {}
        self.model_map = dict(model_map or {})
        """Client model name (or glob) -> upstream model (`--model-map`)."""
        self.wires: dict[str, Wire] = {"responses": ResponsesWire(), "messages": MessagesWire()}
        self.requests_served = 0
        self._runner: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL up to /v1, as OpenAI clients want it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def app(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def guard(request: Any, handler: Any) -> Any:
            return await self._guard(request, handler)

        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[guard])
        for path in ("/v1/chat/completions", "/chat/completions"):
            app.router.add_post(path, self._chat)
        responses, messages = self.wires["responses"], self.wires["messages"]
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/responses", partial(serve_wire, self, wire=responses))
            app.router.add_post(f"{prefix}/messages", partial(serve_wire, self, wire=messages))
            app.router.add_post(f"{prefix}/messages/count_tokens", partial(count_tokens, self, wire=messages))
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        app.router.add_get("/health", self._health)
        return app

    async def start(self) -> TTSServer:
        from aiohttp import web

        # In-flight requests get `shutdown_timeout` seconds to finish when the server stops, then are
        # cancelled (their strategy tasks with them). A client that hangs up cancels its handler
        # (`handler_cancellation`), which cancels its run: the upstream calls in flight are dropped
        # (their connections closed, so the upstream server stops generating) and no more are sent.
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=self.shutdown_timeout, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        if not self.port:
            self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def aclose_backends(self) -> None:
        """Close every stack this server holds (the shared one, judges, per-model ones)."""
        for b in (self.backend, *self.backends.values(), *self.model_stacks.values()):
            close = getattr(b, "aclose", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> TTSServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- middleware -----------------------------------------------------------------------
    async def _guard(self, request: Any, handler: Any) -> Any:
        from aiohttp import web

        wire = self._wire_of(request.path)
        if self.token and request.path not in OPEN_PATHS and not token_ok(request.headers, self.token):
            return wire_error(wire, 401, error_body(
                "missing or wrong bearer token or x-api-key: send 'Authorization: Bearer <token>' (the openai "
                "SDK's api_key) or 'x-api-key: <token>' (the anthropic SDK's)", kind="authentication_error",
                code="invalid_api_key"))
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return wire_error(wire, 413, error_body(f"request body is larger than the server's limit of "
                                                    f"{self.max_body_bytes:,} bytes (tts serve --max-body-mb)",
                                                    code="request_too_large"))
        except web.HTTPNotFound:
            if wire is CHAT:
                raise
            return wire_error(wire, 404, error_body(f"no route {request.method} {request.path}",
                                                    kind="not_found_error"))
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug of ours: a generic 500, the detail (redacted) in our log only
            log.error("internal error on %s %s:\n%s", request.method, request.path,
                      self.redact(traceback.format_exc()))
            return wire_error(wire, 500, error_body("internal error in tts serve (details in the server log)",
                                                    kind="server_error"))

    # -- routes ---------------------------------------------------------------------------
    async def _health(self, request: Any) -> Any:
        return _json(200, {"status": "ok"})  # open to all (for load balancers): says nothing more

    async def _models(self, request: Any) -> Any:
        names = dict.fromkeys([self.model, *self.model_stacks])
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "tts"} for m in names]
        return _json(200, {"object": "list", "data": data})

    async def _chat(self, request: Any) -> Any:
        started = time.perf_counter()
        trace_id = uuid.uuid4().hex
        try:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                raise RequestError("the request body is not valid JSON") from None
            sreq = parse_request(body, request_id=trace_id[:12])
            strategy = strategy_for(sreq.spec, self.strategy, sreq.task)
            model, backend = self._backend_for(sreq.model)
        except RequestError as exc:
            return _json(exc.status, error_body(self.redact(exc), param=exc.param, code=exc.code))
        progress = Progress(planned_samples=planned(strategy, "n"), planned_rounds=planned(strategy, "rounds"))
        run = asyncio.ensure_future(self._run(sreq, strategy, model, backend, progress, trace_id))
        try:
            if sreq.stream:
                return await self._stream(request, run, sreq, progress, strategy, model, trace_id)
            result, error = await run
        finally:
            if not run.done():
                run.cancel()
        if error is not None:
            return self._error_response(error, result, progress)
        body_out = self._body(result, strategy, model, trace_id, sreq)
        self._log(trace_id, result, started)
        return _json(200, body_out)

    async def _stream(self, request: Any, run: asyncio.Future, sreq: ServeRequest, progress: Progress,
                      strategy: Any, model: str, trace_id: str) -> Any:
        started = time.perf_counter()
        resp = await stream.open_stream(request)
        await stream.comment(resp, f"tts: {strategy.name} started")
        result, error = await stream.wait_with_keepalive(resp, run, progress.line, self.keepalive_s)
        if error is not None:
            _, payload = self._error_payload(error, result, progress)
            await stream.data(resp, payload)
        else:
            body = self._body(result, strategy, model, trace_id, sreq)
            for c in chunks(body, include_usage=sreq.include_usage):
                await stream.data(resp, c)
            self._log(trace_id, result, started)
        await stream.done(resp)
        return resp

    def _wire_of(self, path: str) -> Wire:
        name = path.removeprefix("/v1").strip("/").split("/")[0]
        return self.wires.get(name, CHAT)

    # -- running one request --------------------------------------------------------------
    def _backend_for(self, requested: str | None, wire: Wire = CHAT) -> tuple[str, Backend]:
        """The upstream model a request names (bare or with a provider prefix; through `model_map`) and
        its stack. Agents speaking another protocol name their own models: unmapped, those mean ours."""
        mapped = mapped_model(self.model_map, requested)
        if mapped is not None:
            requested = mapped
        elif wire.default_model_for_unknown:
            requested = None
        if (requested in (None, "", "tts", self.model) or self.backend_for_model is None
                or requested == self.model.split("/", 1)[-1]):
            return self.model, self.backend
        stack = self.model_stacks.get(requested)
        if stack is None:
            if len(self.model_stacks) >= MAX_MODELS:
                raise RequestError(f"model {requested!r}: this server already serves {MAX_MODELS} models; "
                                   f"use one of {', '.join([self.model, *self.model_stacks])}", param="model")
            try:
                stack = self.backend_for_model(requested)
            except Exception as exc:  # e.g. litellm cannot route it, a key is missing
                raise RequestError(f"model {requested!r} cannot be served: {exc}", param="model",
                                   code="model_not_found") from None
            self.model_stacks[requested] = stack
        return requested, stack

    async def _run(self, sreq: ServeRequest, strategy: Any, model: str, backend: Backend, progress: Progress,
                   trace_id: str) -> tuple[RunResult | None, BaseException | None]:
        try:
            return await run_request(sreq, strategy, model, backend, progress, trace_id, backends=self.backends,
                                     defaults=self.defaults, trace_dir=self.trace_dir)
        finally:
            self.requests_served += 1

    def _body(self, result: RunResult, strategy: Any, model: str, trace_id: str,
              sreq: ServeRequest) -> dict[str, Any]:
        cand = result.best
        assert cand is not None  # _run turned "no candidate" into an error
        tts = tts_object(result, trace_id, strategy.model_dump(mode="json"))
        if sreq.ignored_fields:
            tts["ignored_message_fields"] = sreq.ignored_fields
        if tts["error"]:
            tts["error"] = self.redact(tts["error"])
        return completion_body(result, cand, completion_id=f"chatcmpl-{trace_id}", model=model, tts=tts)

    # -- errors -----------------------------------------------------------------------------
    def _error_payload(self, error: BaseException, result: RunResult | None,
                       progress: Progress) -> tuple[int, dict[str, Any]]:
        status, payload = classify_error(error, self.redact)
        log.warning("request failed (%d): %s", status, payload["error"]["message"])
        return status, payload

    def _error_response(self, error: BaseException, result: RunResult | None, progress: Progress) -> Any:
        status, payload = self._error_payload(error, result, progress)  # a spent budget won't come back:
        return _json(status, payload, {"x-should-retry": "false"} if status == 429 else None)  # say don't retry

    def _log(self, trace_id: str, result: RunResult, started: float) -> None:
        u = result.usage
        log.info("%s %s %s: %d calls (%d cached), %d tokens, %.2fs", trace_id[:12], result.strategy, result.status,
                 u.calls, u.cached_calls, u.total_tokens, time.perf_counter() - started)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    return web.json_response(payload, status=status, headers=headers)

"""The routes of the translated protocols (`/v1/responses`, `/v1/messages`, `/v1/messages/count_tokens`).

Each request is translated into a chat-completions body (`Wire.to_chat`) and then runs exactly as
a chat completion would (`parse_request`, the server's `_run`, its `_body`); the chat completion
is translated back (`Wire.render`), or streamed as the protocol's events with keep-alives
(SSE comments, or Anthropic's `ping`) while the strategy runs. Errors keep each protocol's shape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from tts.errors import RequestError
from tts.serve import stream
from tts.serve.conversation import Progress
from tts.serve.convert import parse_request, strategy_for
from tts.serve.request import planned
from tts.serve.respond import error_body
from tts.serve.wire import Translated, Wire

log = logging.getLogger("tts.serve")


def wire_error(wire: Wire, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    return web.json_response(wire.error(status, payload), status=status, headers=headers)


async def _translate(server: Any, request: Any, wire: Wire, trace_id: str) -> Translated:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        raise RequestError("the request body is not valid JSON") from None
    t = wire.to_chat(body, wire.id_prefix + trace_id[:24])
    for kind in t.notes.get("builtin_tools_not_sent", []):
        if wire.first_time(f"builtin:{kind}"):
            log.info("/%s: built-in tool %r is not sent upstream (no chat model can run it); said once, and in "
                     "each response's tts.builtin_tools_not_sent", wire.name, kind)
    return t


async def serve_wire(server: Any, request: Any, wire: Wire) -> Any:
    from aiohttp import web

    started = time.perf_counter()
    trace_id = uuid.uuid4().hex
    try:
        t = await _translate(server, request, wire, trace_id)
        sreq = parse_request(t.chat, request_id=trace_id[:12])
        strategy = strategy_for(sreq.spec, server.strategy, sreq.task)
        model, backend = server._backend_for(sreq.model, wire)
    except RequestError as exc:
        return wire_error(wire, exc.status, error_body(server.redact(exc), param=exc.param, code=exc.code))
    progress = Progress(planned_samples=planned(strategy, "n"), planned_rounds=planned(strategy, "rounds"))
    run = asyncio.ensure_future(server._run(sreq, strategy, model, backend, progress, trace_id))
    try:
        if sreq.stream:
            return await _stream(server, request, wire, t, run, strategy, model, trace_id, sreq, progress)
        result, error = await run
    finally:
        if not run.done():
            run.cancel()
    if error is not None:
        status, payload = server._error_payload(error, result, progress)
        return wire_error(wire, status, payload, {"x-should-retry": "false"} if status == 429 else None)
    out = wire.render(server._body(result, strategy, model, trace_id, sreq), t)
    server._log(trace_id, result, started)
    return web.json_response(out)


async def _stream(server: Any, request: Any, wire: Wire, t: Translated, run: asyncio.Future, strategy: Any,
                  model: str, trace_id: str, sreq: Any, progress: Progress) -> Any:
    started = time.perf_counter()
    resp = await stream.open_stream(request)
    await stream.comment(resp, f"tts: {strategy.name} started")
    for name, data in wire.opening(t):
        await stream.event(resp, name, data)

    async def beat(resp: Any, line: str) -> None:
        await stream.event(resp, *wire.keepalive(line))

    result, error = await stream.wait_with_keepalive(resp, run, progress.line, server.keepalive_s, beat=beat)
    if error is not None:
        status, payload = server._error_payload(error, result, progress)
        events = wire.failing(status, payload, t)
    else:
        events = wire.closing(wire.render(server._body(result, strategy, model, trace_id, sreq), t), t)
        server._log(trace_id, result, started)
    for name, data in events:
        await stream.event(resp, name, data)
    await resp.write_eof()
    return resp


async def count_tokens(server: Any, request: Any, wire: Wire) -> Any:
    """`POST /v1/messages/count_tokens`: the request validated as a message would be, then counted."""
    from aiohttp import web

    from tts.serve.messages import count_tokens as count

    try:
        t = await _translate(server, request, wire, uuid.uuid4().hex)
        parse_request(t.chat, request_id="count")
    except RequestError as exc:
        return wire_error(wire, exc.status, error_body(server.redact(exc), param=exc.param, code=exc.code))
    n = await asyncio.get_running_loop().run_in_executor(None, count, t)
    return web.json_response({"input_tokens": n})

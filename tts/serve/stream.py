"""Server-Sent Events for `stream: true`: keep-alive comments while the strategy runs, then the
chosen message as `chat.completion.chunk` events, then `data: [DONE]`.

A comment line (`: ...`) is ignored by every SSE client (the openai SDK, litellm, browsers) but
is traffic, so proxies and load balancers with idle timeouts keep the connection open; ours
carry the run's progress ("12/16 calls answered (sample 12), 12/16 samples").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
               "Connection": "keep-alive", "X-Accel-Buffering": "no"}


async def open_stream(request: Any) -> Any:
    from aiohttp import web

    resp = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await resp.prepare(request)
    return resp


async def comment(resp: Any, text: str) -> None:
    line = " ".join(text.splitlines())  # one comment line: a newline would end it
    await resp.write(f": {line}\n\n".encode())


async def data(resp: Any, obj: Any) -> None:
    await resp.write(f"data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode())


async def event(resp: Any, name: str | None, obj: Any) -> None:
    """A named event (`event: NAME` then its data), or with no name a data line, or a comment for a `str`."""
    if name is None:
        await (comment(resp, obj) if isinstance(obj, str) else data(resp, obj))
    else:
        await resp.write(f"event: {name}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode())


async def done(resp: Any) -> None:
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()


async def wait_with_keepalive(resp: Any, task: asyncio.Future[Any], progress_line: Callable[[float], str],
                              interval_s: float, beat: Callable[[Any, str], Awaitable[None]] | None = None) -> Any:
    """Await `task`, writing a progress comment (or `beat(resp, line)`) every `interval_s` seconds until it is done.
    If the client goes away (a write fails), the task is cancelled and the error re-raised."""
    started = time.perf_counter()
    try:
        while True:
            finished, _ = await asyncio.wait({task}, timeout=interval_s)
            if finished:
                return task.result()
            await (beat or comment)(resp, progress_line(time.perf_counter() - started))
    except BaseException:
        task.cancel()
        raise

"""A loopback OpenAI-compatible HTTP server with fault injection, for tests of the HTTP path.

`python -m tts.testing serve --port P` (or `python -m tts.testing.loopback serve`) runs it standalone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

FAULTS = ("ok", "429", "500", "hang", "malformed", "401", "401-echo", "400", "drop")


class LoopbackServer:
    """The project's own OpenAI-compatible test server on 127.0.0.1, in-process.

        async with LoopbackServer(latency=0.01, p429=0.1) as server:
            backend = OpenAIHTTPBackend("loop", server.url)

    Replies are a pure function of the request: a last user message containing "a + b" is answered
    "... ANSWER: <a+b>", anything else "ANSWER: <word>". Faults come from `server.faults` first (a
    queue of names from FAULTS applied to the next requests, in order), then from the probabilities
    p429, p500, phang, pmalformed (dice seeded by `seed`). "hang" sleeps `hang_s` then answers 504;
    "drop" closes the connection without a reply. "401-echo", and with `api_key` set every request sent
    with another key, is a 401 quoting the key and the Authorization header it was sent (as some
    providers do). `stats` counts requests, ok replies, each fault and `repeats_of_completed`:
    requests whose exact body had already been answered successfully, i.e. work paid twice, and the
    `prompt_tokens`/`completion_tokens` of the replies it delivered. GET /stats returns them as
    JSON; POST /reset zeroes them.
    """

    def __init__(self, *, latency: float = 0.0, p429: float = 0.0, p500: float = 0.0, phang: float = 0.0,
                 pmalformed: float = 0.0, hang_s: float = 3.0, retry_after: str | None = "1", seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0,
                 reply: Callable[[dict[str, Any]], dict[str, Any]] | None = None, p_correct: float = 1.0,
                 api_key: str | None = None) -> None:
        import random

        self.api_key = api_key

        self.p_correct = p_correct
        """Chance that a sum is answered right (a pure function of the request, like simserver's)."""

        self.reply = reply
        """Optional: a function of the request body returning the whole chat-completion reply (e.g.
        one with tool calls); default `loopback_reply`."""

        self.latency = latency
        self.p429, self.p500, self.phang, self.pmalformed = p429, p500, phang, pmalformed
        self.hang_s = hang_s
        self.retry_after = retry_after
        self.host = host
        self.port = port
        self.faults: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        """Every parsed request body, in arrival order."""
        self._dice = random.Random(seed)
        self._runner: Any = None
        self.reset()

    @property
    def url(self) -> str:
        """The base URL, up to /v1, as an OpenAI client wants it."""
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        self.stats: dict[str, int] = {"requests": 0, "ok": 0, "e429": 0, "e500": 0, "hung": 0, "malformed": 0,
                                      "e401": 0, "e400": 0, "dropped": 0, "abandoned": 0, "in_flight": 0,
                                      "max_in_flight": 0, "repeats_of_completed": 0, "prompt_tokens": 0,
                                      "completion_tokens": 0}
        self._done: set[str] = set()
        self.bodies = []

    async def start(self) -> LoopbackServer:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/reset", self._reset)
        app.router.add_get("/v1/models", self._models)
        # handler_cancellation: a request the client gave up on (a timeout) stops hanging here too;
        # a short shutdown_timeout: leaving the `async with` does not wait for hung requests.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        if not self.port:
            self.port = site._server.sockets[0].getsockname()[1]  # the free port the OS chose
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def _pick_fault(self) -> str:
        if self.faults:
            return self.faults.pop(0)
        roll = self._dice.random()
        for name, p in (("429", self.p429), ("500", self.p500), ("hang", self.phang), ("malformed", self.pmalformed)):
            if roll < p:
                return name
            roll -= p
        return "ok"

    async def _stats(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(self.stats)

    async def _reset(self, request: Any) -> Any:
        from aiohttp import web

        self.reset()
        return web.json_response({})

    async def _models(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": "loopback", "object": "model"}]})

    async def _chat(self, request: Any) -> Any:
        import hashlib
        import json

        from aiohttp import web

        raw = await request.read()
        s = self.stats
        s["requests"] += 1
        digest = hashlib.sha256(raw).hexdigest()
        if digest in self._done:
            s["repeats_of_completed"] += 1
        try:
            body = json.loads(raw)
            if not isinstance(body.get("messages"), list):
                raise ValueError("no messages")
        except (ValueError, AttributeError):
            s["e400"] += 1
            return _error(400, "request body is not a chat completion request")
        self.bodies.append(body)
        fault = self._pick_fault()
        sent = _sent_key(request)
        if fault == "401-echo" or (self.api_key is not None and sent != self.api_key):
            s["e401"] += 1
            return _error(401, f"Incorrect API key provided: {sent}. Received headers: Authorization: "
                          f"{request.headers.get('Authorization', '')}", "invalid_request_error")
        if fault == "429":
            s["e429"] += 1
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
            return _error(429, "rate limited", "rate_limit_error", headers)
        if fault == "401":
            s["e401"] += 1
            return _error(401, "invalid api key", "authentication_error")
        if fault == "400":
            s["e400"] += 1
            return _error(400, "bad request", "invalid_request_error")
        s["in_flight"] += 1
        s["max_in_flight"] = max(s["max_in_flight"], s["in_flight"])
        try:
            if fault == "hang":
                s["hung"] += 1
                await asyncio.sleep(self.hang_s)
                return _error(504, "hung")
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            s["in_flight"] -= 1
        if fault == "500":
            s["e500"] += 1
            return _error(500, "simulated failure", "server_error")
        if fault == "drop":
            s["dropped"] += 1
            request.transport.close()
            return web.Response(status=500)
        if fault == "malformed":
            s["malformed"] += 1
            return web.Response(body=b'{"id": "x", "choices": [ {"mess', content_type="application/json")
        reply = self.reply(body) if self.reply is not None else loopback_reply(body, self.p_correct)
        if request.transport is None or request.transport.is_closing():
            s["abandoned"] += 1  # the client is gone: never delivered, so not paid for
            return web.Response(status=499)
        self._done.add(digest)
        s["ok"] += 1
        usage = reply.get("usage") or {}  # what was served (and would be billed), as a provider counts it
        s["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        s["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        return web.Response(body=json.dumps(reply).encode(), content_type="application/json")


def _error(status: int, message: str, kind: str = "error", headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    return web.json_response({"error": {"message": message, "type": kind}}, status=status, headers=headers)


def _sent_key(request: Any) -> str:
    """The API key a request carries: a bearer token, an x-api-key / api-key header or a ?key= query."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return (request.headers.get("x-api-key") or request.headers.get("api-key") or request.query.get("key")
            or request.query.get("api_key") or "")


def loopback_reply(body: dict[str, Any], p_correct: float = 1.0) -> dict[str, Any]:
    """The deterministic chat-completion answer of LoopbackServer to a request body. A sum is
    answered right with probability `p_correct` (drawn from a hash of the request and choice)."""
    import hashlib
    import json
    import re

    messages = body.get("messages") or []
    last_user = ""
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            last_user = c if isinstance(c, str) else json.dumps(c)
            break
    n = int(body.get("n") or 1)
    prompt_tokens = max(1, sum(len(json.dumps(m.get("content"))) for m in messages) // 4)
    choices, completion_tokens = [], 0
    for i in range(n):
        key = json.dumps([messages, body.get("seed"), body.get("temperature"), i], sort_keys=True)
        h = hashlib.sha256(key.encode()).hexdigest()
        mm = re.search(r"(-?\d+)\s*\+\s*(-?\d+)", last_user)
        if mm:
            a, b = int(mm.group(1)), int(mm.group(2))
            total = a + b
            if p_correct < 1.0 and int(h[8:16], 16) / 16**8 >= p_correct:
                total += (-3, -2, -1, 1, 2, 3, 10)[int(h[16:18], 16) % 7]
            text = f"{a} plus {b} is {total}.\nANSWER: {total}"
        else:
            text = f"Thinking about it ({h[:6]}).\nANSWER: {('alpha', 'beta', 'gamma', 'delta')[int(h[6], 16) % 4]}"
        tokens = text.split()
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if limit and len(tokens) > int(limit):  # a reply never exceeds max_tokens, as at a real server
            tokens, finish = tokens[:int(limit)], "length"
            text = " ".join(tokens)
        completion_tokens += len(tokens)
        choice: dict[str, Any] = {"index": i, "message": {"role": "assistant", "content": text},
                                  "finish_reason": finish}
        if body.get("logprobs"):
            top = int(body.get("top_logprobs") or 0)  # the chosen token first, then made-up runners-up
            choice["logprobs"] = {"content": [{"token": t, "logprob": -0.1 * (j % 5), "top_logprobs": [
                {"token": t if r == 0 else f"{t}~{r}", "logprob": -0.1 * (j % 5) - r} for r in range(top)]}
                for j, t in enumerate(tokens)]}
        choices.append(choice)
    return {"id": "chatcmpl-loop", "object": "chat.completion", "model": body.get("model", "loopback"),
            "choices": choices, "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                          "total_tokens": prompt_tokens + completion_tokens}}


def _serve_main(argv: list[str] | None = None) -> None:
    """`python -m tts.testing serve --port P [--latency S] [--p429 P] ...`: run LoopbackServer until killed."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tts.testing", description="tts loopback OpenAI-compatible server")
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("serve", help="serve on 127.0.0.1 until killed")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=0, help="0 = a free port (printed on the first line)")
    sp.add_argument("--latency", type=float, default=0.0)
    for name in ("p429", "p500", "phang", "pmalformed"):
        sp.add_argument(f"--{name}", type=float, default=0.0)
    sp.add_argument("--hang-s", type=float, default=3.0)
    sp.add_argument("--retry-after", default="1")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--p-correct", type=float, default=1.0, help="chance a sum is answered right")
    sp.add_argument("--api-key", help="answer any other key with a 401 quoting it")
    args = ap.parse_args(argv)

    async def serve() -> None:
        server = LoopbackServer(latency=args.latency, p429=args.p429, p500=args.p500, phang=args.phang,
                                pmalformed=args.pmalformed, hang_s=args.hang_s, retry_after=args.retry_after,
                                seed=args.seed, host=args.host, port=args.port, p_correct=args.p_correct,
                                api_key=args.api_key)
        async with server:
            print(f"loopback server listening on {server.url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _serve_main()

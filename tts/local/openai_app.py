"""The embedded model's OpenAI-compatible HTTP face (aiohttp, loopback): `GET /v1/models` and
`POST /v1/chat/completions` with `n`, `seed`, `temperature`, `top_p`, `top_k`, `min_p`,
`repeat_penalty`, `max_tokens`, `stop`, `logprobs`/`top_logprobs` and `stream` (the whole answer
as one chunk per choice). The `n` samples of a request are one job of the engine and share one
prefill; choice i is drawn with seed `seed + i`, so it is the sample a one-choice request with that
seed gets. Usage counts the prompt once.
Runs inside the server child process only (it imports llama_cpp through the engine).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from tts.local.batch_engine import Engine, Job, Sample
from tts.local.sampler_chain import SamplingParams

MAX_N = 128


class BadRequest(ValueError):
    pass


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _number(body: dict, name: str, kind: type, default: Any, low: float, high: float) -> Any:
    value = body.get(name)
    if value is None:
        return default
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


class ChatApp:
    def __init__(self, engine: Engine, formatter: Any, tokenize: Any, alias: str, n_ctx: int) -> None:
        self.engine, self.formatter, self.tokenize = engine, formatter, tokenize
        self.alias, self.n_ctx = alias, n_ctx

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/chat/completions", self.chat)
        return app

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.alias, "object": "model", "owned_by": "me", "permissions": []}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise BadRequest("the body must be a JSON object with a list of messages")
            job, prompt_len = self._job(body)
        except (BadRequest, ValueError) as exc:
            return web.json_response({"error": {"message": str(exc), "type": "invalid_request_error"}}, status=400)
        samples = await self._run(job)
        choices = [self._choice(i, s, job.logprobs is not None, job.stop) for i, s in enumerate(samples)]
        usage = {"prompt_tokens": prompt_len, "completion_tokens": sum(len(s.tokens) for s in samples)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        answer = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                  "model": self.alias, "choices": choices, "usage": usage}
        if body.get("stream"):
            return await self._stream(request, answer)
        return web.json_response(answer)

    def _job(self, body: dict) -> tuple[Job, int]:
        messages = [{"role": str(m.get("role", "user")), "content": _text(m.get("content"))}
                    for m in body["messages"] if isinstance(m, dict)]
        prompt = self.formatter(messages=messages).prompt
        tokens = self.tokenize(prompt)
        if len(tokens) >= self.n_ctx:
            raise BadRequest(f"Requested tokens ({len(tokens)}) exceed context window of {self.n_ctx}")
        room = self.n_ctx - len(tokens)
        max_new = body.get("max_completion_tokens") or body.get("max_tokens")
        max_new = room if max_new is None or int(max_new) <= 0 else min(int(max_new), room)
        n = _number(body, "n", int, 1, 1, MAX_N)
        seed = _number(body, "seed", int, None, -(2**63), 2**63)
        params = SamplingParams(
            temperature=_number(body, "temperature", float, 0.8, 0.0, 100.0),
            top_p=_number(body, "top_p", float, 0.95, 0.0, 1.0), top_k=_number(body, "top_k", int, 40, 0, 10**6),
            min_p=_number(body, "min_p", float, 0.05, 0.0, 1.0),
            repeat_penalty=_number(body, "repeat_penalty", float, 1.1, 0.0, 100.0))
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else [str(s) for s in stop if s]
        logprobs = _number(body, "top_logprobs", int, 0, 0, 20) if body.get("logprobs") else None
        return Job(prompt=tokens, n=n, seed=seed, max_new=max_new, params=params, stop=stop, logprobs=logprobs,
                  done=lambda _: None, fail=lambda _: None, width=self.engine.width(len(tokens), max_new)), len(tokens)

    async def _run(self, job: Job) -> list[Sample]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Sample]] = loop.create_future()
        job.done = lambda got: loop.call_soon_threadsafe(_settle, fut, got, None)
        job.fail = lambda exc: loop.call_soon_threadsafe(_settle, fut, None, exc)
        self.engine.submit(job)
        try:
            return await fut
        except BaseException:
            job.cancelled = True  # the client went away: stop decoding for it
            raise

    @staticmethod
    def _choice(index: int, s: Sample, want_logprobs: bool, stops: list[str]) -> dict:
        choice: dict[str, Any] = {"index": index, "message": {"role": "assistant", "content": s.text},
                                  "logprobs": None, "finish_reason": s.finish}
        if want_logprobs:
            cut = len((s.text or "").encode())  # a stop string ends the text: drop the tokens after it
            starts = [0, *s.ends[:-1]]
            content = [lp for lp, at in zip(s.logprobs, starts, strict=False) if at < cut or not stops]
            choice["logprobs"] = {"content": content}
        return choice

    @staticmethod
    async def _stream(request: web.Request, answer: dict) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        base = {k: answer[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        for c in answer["choices"]:
            delta = {"index": c["index"], "delta": {"role": "assistant", "content": c["message"]["content"]},
                     "logprobs": c["logprobs"], "finish_reason": c["finish_reason"]}
            await resp.write(f"data: {json.dumps(base | {'choices': [delta]})}\n\n".encode())
        await resp.write(f"data: {json.dumps(base | {'choices': [], 'usage': answer['usage']})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _settle(fut: asyncio.Future, got: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(got)

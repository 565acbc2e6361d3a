"""A strategy's `RunResult` -> an OpenAI `chat.completion` body (and its streamed chunks).

`usage` is the OpenAI usage of every upstream call the strategy made (`RunResult.usage`); the
`tts` object says how the answer was reached: strategy, calls, votes or tournament digest,
what was consumed and what was paid, status and the trace id.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tts.records import Candidate, RunResult, Usage


def message_of(cand: Candidate) -> dict[str, Any]:
    if cand.message is not None:
        return cand.message.to_api()
    return {"role": "assistant", "content": cand.text}


def finish_reason(cand: Candidate, result: RunResult) -> str:
    if cand.message is not None and cand.message.tool_calls:
        return "tool_calls"
    if result.status == "budget_exceeded" and (result.best is None or result.metadata.get("partial")):
        return "length"  # cut short by a cap: the answer is the best of what was paid for
    return str(cand.metadata.get("finish_reason") or "stop")


def openai_usage(u: Usage) -> dict[str, int]:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def _small(value: Any, limit: int = 2000) -> Any:
    """Strategy metadata that is small enough to return (votes, scores, rounds); else None."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        return None
    return value if len(text) <= limit else None


def tts_object(result: RunResult, trace_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    paid = getattr(result, "paid", None)  # RunResult.paid: cache hits excluded (newer tts)
    calls = {"answered": len([r for r in result.trace if r.error is None]),
             "cached": sum(1 for r in result.trace if r.cached),
             "failed": sum(1 for r in result.trace if r.error is not None)}
    digest = {k: v for k, v in ((k, _small(v)) for k, v in result.metadata.items()) if v is not None}
    return {
        "strategy": result.strategy,
        "spec": spec,
        "status": result.status,
        "error": result.error,
        "answer": result.answer,
        "candidates": len(result.candidates),
        "calls": calls,
        "digest": digest,
        "usage": result.usage.model_dump(),
        "paid": paid.model_dump() if paid is not None else None,
        "cost_usd": result.usage.cost_usd,
        "wall_s": round(result.wall_s, 3),
        "trace_id": trace_id,
    }


def completion_body(result: RunResult, cand: Candidate, *, completion_id: str, model: str,
                    tts: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message_of(cand), "finish_reason": finish_reason(cand, result),
                     "logprobs": None}],
        "usage": openai_usage(result.usage),
        "system_fingerprint": None,
        "tts": tts,
    }


def chunks(body: dict[str, Any], *, include_usage: bool, piece_chars: int = 64) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects that stream `body`: the role, the content in pieces, each
    tool call whole (index, id, name, arguments), the finish reason with the `tts` object, then
    the usage chunk when the client asked for it (`stream_options.include_usage`)."""
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"], "model": body["model"],
            "system_fingerprint": None}
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
        out = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **more}
        if include_usage:
            out["usage"] = None
        return out

    out = [chunk({"role": "assistant", "content": ""})]
    content = message.get("content")
    if isinstance(content, list):  # content parts: send their text
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    for start in range(0, len(content or ""), piece_chars):
        out.append(chunk({"content": content[start:start + piece_chars]}))
    for i, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        out.append(chunk({"tool_calls": [{"index": i, "id": call.get("id"), "type": call.get("type", "function"),
                                          "function": {"name": fn.get("name"),
                                                       "arguments": fn.get("arguments", "")}}]}))
    out.append(chunk({}, choice["finish_reason"], tts=body["tts"]))
    if include_usage:
        out.append({**base, "choices": [], "usage": body["usage"]})
    return out


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """The OpenAI error shape, which every OpenAI client parses."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}

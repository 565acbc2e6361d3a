"""An OpenAI chat-completions request body -> what a strategy run needs, validated.

The conversation is kept as it came: every message and role (assistant tool calls and tool
results included) becomes the task's `messages`, and `tools`, `tool_choice`, `response_format`
its turn (`Task`); the other call parameters become `params`, which `run_task` gives, like the
turn, to every call that answers the task (samples, drafts, refinements) and to no judge,
distill or summary. Our own fields are `model`, `stream`, `stream_options`, `seed`
(the base seed of the strategy's samples) and `tts`: a strategy spec overriding the server's
default (a spec without `kind` changes only the fields it names) plus an optional `budget`.
Every mistake is a `RequestError` naming the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from tts.errors import ConfigError, RequestError
from tts.records import Message, Record, Task
from tts.spec import describe_validation_error, strategy_from_spec

# Sent upstream through ChatRequest's own fields; everything not listed here or in _OURS goes as it is.
_TYPED = ("temperature", "max_tokens", "stop", "logprobs", "top_logprobs")
_OURS = ("model", "messages", "stream", "stream_options", "n", "seed", "tts")
_TURN = ("tools", "tool_choice", "response_format")
_MESSAGE_FIELDS = frozenset(Message.model_fields)


class Budget(Record):
    """A cap on one request, on top of the server-wide caps (`tts.budget` in the body)."""

    max_calls: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_cost: float | None = Field(None, gt=0)


class ServeRequest(Record):
    task: Task
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    seed: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    """The client's call parameters, for the calls that answer its conversation."""
    spec: dict[str, Any] | None = None
    budget: Budget | None = None
    ignored_fields: list[str] = Field(default_factory=list)
    """Message fields that were not passed upstream (no part of a chat message)."""


def parse_request(body: Any, request_id: str) -> ServeRequest:
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object (a chat completion request)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of messages", param="messages")
    ignored: set[str] = set()
    msgs = [_message(m, i, ignored) for i, m in enumerate(messages)]
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("'model' must be a string", param="model")
    n = body.get("n")
    if n not in (None, 1):
        raise RequestError("'n' must be 1: tts serve answers with the one candidate its strategy chose; "
                           "set the number of samples in the strategy, e.g. extra_body={'tts': {'n': 8}}",
                           param="n")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError("'seed' must be an integer", param="seed")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object", param="stream_options")
    params = {k: v for k, v in body.items() if k not in _OURS and v is not None}
    _check_params(params)
    task = _task(request_id, msgs, {k: params.pop(k) for k in _TURN if k in params})
    spec, budget = _tts_field(body.get("tts"))
    return ServeRequest(task=task, model=model, stream=bool(body.get("stream")),
                        include_usage=bool(options.get("include_usage")), seed=seed, params=params, spec=spec,
                        budget=budget, ignored_fields=sorted(ignored))


def _task(request_id: str, messages: list[Message], turn: dict[str, Any]) -> Task:
    try:
        return Task(id=request_id, messages=messages, **turn)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in err["loc"]) or next((k for k in _TURN if f"'{k}" in msg), "messages")
        raise RequestError(msg, param=field) from None


def _message(raw: Any, index: int, ignored: set[str]) -> Message:
    if not isinstance(raw, dict):
        raise RequestError(f"messages[{index}] must be an object", param=f"messages[{index}]")
    # Clients echo back fields the server sent as null (audio, function_call): unset is null. Fields
    # that are no part of a chat message (a client library's bookkeeping, e.g. litellm's
    # provider_specific_fields) mean nothing upstream: dropped, and named in the response's `tts`.
    data = {k: v for k, v in raw.items() if v is not None and k in _MESSAGE_FIELDS}
    ignored.update(k for k, v in raw.items() if v is not None and k not in _MESSAGE_FIELDS)
    try:
        return Message.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        if field == "role":
            why = "must be one of system, developer, user, assistant, tool"
        else:
            why = err["msg"]
        raise RequestError(f"messages[{index}].{field} {why}", param=f"messages[{index}].{field}") from None


def _check_params(params: dict[str, Any]) -> None:
    def bad(name: str, what: str) -> RequestError:
        return RequestError(f"'{name}' must be {what}", param=name)

    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        if name in params and (not isinstance(params[name], int | float) or isinstance(params[name], bool)):
            raise bad(name, "a number")
    for name in ("max_tokens", "max_completion_tokens", "top_logprobs"):
        if name in params and (not isinstance(params[name], int) or isinstance(params[name], bool)
                               or params[name] < (0 if name == "top_logprobs" else 1)):
            raise bad(name, "a positive integer")
    if "stop" in params:
        stop = params["stop"]
        if isinstance(stop, str):
            params["stop"] = [stop]
        elif not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
            raise bad("stop", "a string or a list of strings")
    if "tools" in params and not (isinstance(params["tools"], list) and all(isinstance(t, dict)
                                                                            for t in params["tools"])):
        raise bad("tools", "a list of tool objects")


def _tts_field(raw: Any) -> tuple[dict[str, Any] | None, Budget | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise RequestError("'tts' must be an object: a strategy spec such as {\"kind\": \"self-consistency\", "
                           "\"n\": 8}, optionally with \"budget\": {\"max_calls\": ..., \"max_tokens\": ..., "
                           "\"max_cost\": ...}", param="tts")
    spec = dict(raw)
    budget = None
    if "budget" in spec:
        try:
            budget = Budget.model_validate(spec.pop("budget"))
        except ValidationError as exc:
            raise RequestError("tts." + describe_validation_error(exc, "budget"), param="tts.budget") from None
    return spec or None, budget


def strategy_for(spec: dict[str, Any] | None, default: Any, task: Task) -> Any:
    """The strategy of a request: the server's default, or `spec` (merged over the default when it
    names no `kind`), validated like a spec file, and able to answer the request's turn (a
    text-only strategy refuses tools and JSON formats: a 400, before any upstream call)."""
    from tts.run import check_answers_turn

    strategy = default
    if spec:
        if "kind" not in spec:
            spec = {**default.model_dump(mode="json"), **spec}
        try:
            strategy = strategy_from_spec(spec)
        except ConfigError as exc:
            raise RequestError(f"tts: {exc}", param="tts") from None
    try:
        check_answers_turn(strategy, task)
    except ConfigError as exc:
        raise RequestError(str(exc), param="tools" if task.tools else "response_format") from None
    return strategy


def call_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The client's parameters split into ChatRequest fields and pass-through `extra`."""
    typed = {k: params[k] for k in _TYPED if k in params}
    extra = {k: v for k, v in params.items() if k not in _TYPED}
    if "max_completion_tokens" in extra:  # the newer name wins; never send both
        typed["max_tokens"] = None
    return typed, extra


def client_turn(params: dict[str, Any]) -> dict[str, Any]:
    """The client's parameters as `run_task(turn=...)`: ChatRequest fields, the rest in `extra`."""
    typed, extra = call_params(params)
    return {**typed, "extra": extra} if extra else typed

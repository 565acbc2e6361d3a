"""What both HTTP backends share: status -> error mapping, Retry-After parsing, per-choice usage,
and the one parser of a chat-completion response (a JSON dict from the lean client, or the SDK
object litellm returns: both have the same fields)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tts.errors import AuthError, BackendError, MalformedResponse, PermanentError, RateLimited, ServerError
from tts.records import Completion, TokenLogprob, Usage, trusted

if TYPE_CHECKING:
    from tts.seam import ChatRequest


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name in ("retry-after", "Retry-After", "retry-after-ms"):
        value = headers.get(name)
        if value:
            seconds = parse_retry_after(value)
            if seconds is not None and name == "retry-after-ms":
                seconds /= 1000.0
            return seconds
    return None


REJECTED = "the upstream rejected the credentials (check the API key)"
"""How an AuthError for a 401/403 begins, whatever the provider's own words."""


def error_for_status(status: int, message: str, headers: Mapping[str, str] | None = None) -> BackendError:
    """The tts error for a non-2xx HTTP status (its message redacted, as every TTSError's is)."""
    if status == 429:
        return RateLimited(message, status=status, retry_after=retry_after_from_headers(headers))
    if status in (401, 403):
        return AuthError(f"{REJECTED}: {message}", status=status)
    if status == 408 or status >= 500:
        # 408 Request Timeout is the server giving up on us: worth another try, like a 5xx.
        return ServerError(message, status=status)
    return PermanentError(message, status=status)


def split_usage(prompt_tokens: int, completion_tokens: int, n: int, cached_tokens: int = 0) -> list[Usage]:
    """One response's usage spread over its `n` choices so that the parts sum to the whole:
    the prompt (and its cached part) and the call belong to the first choice, completion tokens
    are split evenly."""
    if n <= 1:
        return [Usage.of(prompt_tokens, completion_tokens, 1, cached_tokens=cached_tokens)]
    share, rest = divmod(completion_tokens, n)
    out = [Usage.of(prompt_tokens, share + rest, 1, cached_tokens=cached_tokens)]
    out.extend(Usage.of(completion_tokens=share) for _ in range(n - 1))
    return out


def get(obj: Any, name: str) -> Any:
    """A field of a JSON object or of the SDK's object standing for it; None when absent."""
    return obj.get(name) if type(obj) is dict or isinstance(obj, Mapping) else getattr(obj, name, None)


def parse_chat(body: Any, request: ChatRequest, latency: float, model: str,
               what: Callable[[], str]) -> list[Completion]:
    """A chat-completion response -> one `Completion` per choice; MalformedResponse, starting with
    `what()` (which response), when it is not one. `body` is the JSON object, or litellm's
    response object, whose parts all answer `.get(field)` the same way. The fields are checked
    here, one by one, so the completions are built without validating them again."""
    try:
        choices = body.get("choices")
        if not choices:
            raise ValueError("no choices")
        u = body.get("usage")
        usages = split_usage(int(u.get("prompt_tokens") or 0) if u else 0,
                             int(u.get("completion_tokens") or 0) if u else 0, len(choices), cached_prompt_tokens(u))
        served = body.get("model") or model
        if not isinstance(served, str):
            raise TypeError(f"model is {type(served).__name__}")
        out = []
        first = request.sample_index
        for i, choice in enumerate(choices):
            message = choice.get("message")
            if message is None:
                raise KeyError("message")
            text = message.get("content")
            tool_calls = message.get("tool_calls")
            if tool_calls:
                tool_calls = [t if isinstance(t, dict) else t.model_dump() if hasattr(t, "model_dump") else dict(t)
                              for t in tool_calls]
            elif text is None:
                raise ValueError("a choice has neither content nor tool calls")
            if text is not None and not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
            finish = choice.get("finish_reason")
            logprobs = choice.get("logprobs")
            out.append(trusted(Completion, {
                "text": text or "", "finish_reason": None if finish is None else str(finish), "usage": usages[i],
                "latency_s": latency, "cached": False, "model": served, "sample_index": first + i,
                "logprobs": parse_logprobs(logprobs) if logprobs else None, "tool_calls": tool_calls or None,
                "stopped": False}))
        return out
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise MalformedResponse(f"{what()} is not a chat completion ({exc})") from exc


def cached_prompt_tokens(usage: Any) -> int:
    """Prompt tokens read from the provider's prompt cache, from a usage block (a dict or an
    object): OpenAI's `prompt_tokens_details.cached_tokens`, else Anthropic's
    `cache_read_input_tokens` (litellm passes both through); 0 when absent."""
    if not usage:
        return 0
    details = get(usage, "prompt_tokens_details")
    value = get(details, "cached_tokens") if details else None
    if not value:
        value = get(usage, "cache_read_input_tokens")
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def parse_logprobs(block: Any) -> list[TokenLogprob] | None:
    """The OpenAI `choice.logprobs` block ({"content": [{token, logprob, top_logprobs}, ...]})."""
    if not block:
        return None
    content = block.get("content") if isinstance(block, Mapping) else getattr(block, "content", None)
    if not content:
        return None
    out = []
    for item in content:
        if not isinstance(item, Mapping):
            item = item.model_dump() if hasattr(item, "model_dump") else dict(item)
        top = item.get("top_logprobs")
        out.append(TokenLogprob(token=item["token"], logprob=item["logprob"],
                                top_logprobs=[dict(t) if isinstance(t, Mapping) else t.model_dump() for t in top]
                                if top else None))
    return out


def short(text: str | bytes, limit: int = 300) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."

"""What an agent's model error means: refused for good (stop the run), out of context (the rollout
ends like a step limit), or anything else (the rollout failed); and a check that litellm can route a model."""

from __future__ import annotations

import re
from typing import Any

from tts.errors import UsageError
from tts.redact import redact

_REFUSED = {"BadRequestError", "AuthenticationError", "NotFoundError", "PermissionDeniedError",
            "UnsupportedParamsError", "UnprocessableEntityError"}
_AUTH = {"AuthenticationError", "PermissionDeniedError"}
_CONTEXT = ("ContextWindowExceededError",)
_CONTEXT_TEXT = re.compile(r"context (window|length)|maximum context|too many tokens|exceeds? .*context"
                           r"|prompt is too long|requested tokens", re.I)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` on one line, redacted (`tts.redact`: a provider's 401 may quote the key)."""
    text = " ".join(redact(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def context_overflow(exc: BaseException) -> bool:
    names = {k.__name__ for k in type(exc).__mro__}
    return bool(names.intersection(_CONTEXT)) or bool(_CONTEXT_TEXT.search(str(exc)))


def refused(exc: BaseException) -> bool:
    """A request the provider will never accept (unknown model or provider, 400/401/403/404/422)."""
    names = {k.__name__ for k in type(exc).__mro__}
    return bool(names & _REFUSED) and not context_overflow(exc) and "ContentPolicyViolationError" not in names


def why_refused(exc: BaseException) -> str:
    """What a refusal means in plain words, when the exception's class says it ("" otherwise)."""
    names = {k.__name__ for k in type(exc).__mro__}
    return "the upstream rejected the credentials (check the API key): " if names & _AUTH else ""


def fail_fast(model: Any) -> None:
    """Stop mini-swe-agent's litellm models from retrying what can never succeed: they retry a 400 (e.g.
    litellm's 'LLM Provider NOT provided', or a llama.cpp context overflow) ten times over minutes; here
    any 400/422 is raised at once, as 401/403/404 already are (`abort_exceptions`)."""
    aborts = getattr(model, "abort_exceptions", None)
    if not isinstance(aborts, list):
        return
    from tts._litellm import import_litellm

    ex = import_litellm().exceptions
    more = [getattr(ex, name) for name in ("BadRequestError", "UnprocessableEntityError") if hasattr(ex, name)]
    model.abort_exceptions = [*aborts, *(e for e in more if e not in aborts)]


def check_agent_model(model: str | None, api_base: str | None = None) -> None:
    """One line, before any rollout starts, when litellm cannot route `model` at all."""
    if not model:
        return
    from tts._litellm import import_litellm

    litellm = import_litellm()
    try:
        litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception as exc:
        why = str(exc).split("\n")[0][:200]
        raise UsageError(f"the agent's model {model!r} is not a model litellm can route ({why}); use a "
                         f"provider-prefixed name (e.g. openai/gpt-5-mini, anthropic/claude-sonnet-4-5, "
                         f"openai/NAME with --api-base for a local server) or 'local' for the embedded model"
                         ) from None

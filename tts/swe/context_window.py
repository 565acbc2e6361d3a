"""How many tokens a model's context holds, so a summary prompt can be cut to fit it.

    await context_window(backend)      the window in tokens, or None when nobody says

Asked in this order, the first answer wins (and is remembered per model and endpoint):
1. the base backend's own `context_tokens` (the embedded model knows its server's `n_ctx`);
2. the server's `GET {api_base}/models` entry for the model: `context_length` (OpenRouter, LM Studio),
   `max_model_len` (vLLM), `n_ctx` / `meta.n_ctx_train` (llama.cpp), `max_context_length`, `context_window`;
3. litellm's model info (`max_input_tokens`) for a litellm model name.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

_KEYS = ("context_length", "max_model_len", "n_ctx", "max_context_length", "context_window", "max_input_tokens")
_known: dict[tuple[str, str], int | None] = {}


def base_backend(backend: Any) -> Any:
    """The backend under every wrapper."""
    while getattr(backend, "inner", None) is not None:
        backend = backend.inner
    return backend


def _from_entry(entry: dict[str, Any]) -> int | None:
    for source in (entry, entry.get("meta") or {}, entry.get("top_provider") or {}):
        if not isinstance(source, dict):
            continue
        for key in (*_KEYS, "n_ctx_train"):
            value = source.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


def _ask_models(api_base: str, model: str, timeout: float = 5.0) -> int | None:
    try:
        with urllib.request.urlopen(f"{api_base.rstrip('/')}/models", timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    entries = [e for e in (data.get("data") or []) if isinstance(e, dict)] if isinstance(data, dict) else []
    name = model.split("/", 1)[1] if model.startswith(("openai/", "hosted_vllm/")) else model
    match = [e for e in entries if e.get("id") in (model, name)] or (entries if len(entries) == 1 else [])
    return _from_entry(match[0]) if match else None


def _ask_litellm(model: str) -> int | None:
    try:
        from tts._litellm import import_litellm

        info = import_litellm().get_model_info(model)
    except Exception:  # unknown model: litellm raises a plain Exception
        return None
    value = info.get("max_input_tokens") or info.get("max_tokens")
    return int(value) if isinstance(value, int) and value > 0 else None


async def context_window(backend: Any) -> int | None:
    """The context window of the model behind `backend`, in tokens, or None when unknown."""
    base = base_backend(backend)
    own = getattr(base, "context_tokens", None)
    if isinstance(own, int) and own > 0:
        return own
    model = str(getattr(base, "model", "") or "")
    api_base = str(getattr(base, "api_base", "") or "")
    if not model:
        return None
    key = (model, api_base)
    if key not in _known:
        found = await asyncio.to_thread(_ask_models, api_base, model) if api_base else None
        if found is None and type(base).__name__ == "LiteLLMBackend":
            found = await asyncio.to_thread(_ask_litellm, model)
        _known[key] = found
    return _known[key]

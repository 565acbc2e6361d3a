"""Several samples of one prompt per request (`n=K` on the wire: one prefill, K choices).

`RunContext.sample` comes here when `n_per_request` > 1. The samples start..start+n-1 go out in
requests of up to K, each a `ChatRequest` with `n=K` and the `sample_index` (and seed) of its first
sample; the answer's choices become K completions with their own sample indices, each recorded as
its own call in the trace with its share of the usage (the prompt and the call on the first, the
completion tokens split), so totals stay exact. The cache stores each choice under the key of the
one-sample request it stands for (`ChatRequest.per_sample`), so a later run with another K, or a
larger N, reuses every sample already paid for.

Backends that cannot return several choices say so with `supports_n = False` (the embedded
llama.cpp model; litellm for providers without `n`, e.g. Anthropic): then each sample is its own
request, said once in the log. A server that silently answers fewer choices than asked is
treated the same way from then on, and the missing samples are asked for one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tts.records import Completion, Message
from tts.seam import Backend

if TYPE_CHECKING:
    from tts.context import RunContext

log = logging.getLogger("tts.batching")
_told: set[str] = set()


def base_backend(backend: Backend) -> Any:
    """The innermost backend of a wrapper stack."""
    layer: Any = backend
    while getattr(layer, "inner", None) is not None:
        layer = layer.inner
    return layer


def supports_n(backend: Backend) -> bool:
    """Whether the model behind `backend` returns several choices for `n > 1` (default: yes)."""
    return bool(getattr(base_backend(backend), "supports_n", True))


def _tell_once(backend: Backend, why: str) -> None:
    name = getattr(backend, "namespace", type(backend).__name__)
    if name not in _told:
        _told.add(name)
        log.warning("n_per_request: %s %s; sending one request per sample", name, why)


async def sample_batched(ctx: RunContext, messages: Sequence[Message | dict], n: int, k: int, *, role: str,
                         start: int = 0, use: str = "default", **params: Any) -> list[Completion]:
    backend = ctx.backends.get(use) or ctx.backends["default"]
    if not supports_n(backend):
        _tell_once(backend, "does not support n > 1")
        return list(await asyncio.gather(*(
            ctx.complete(messages, role=role, sample_index=start + i, use=use, **params) for i in range(n))))

    async def one_request(first: int, size: int) -> list[Completion]:
        out = await ctx.call(backend, ctx.request(messages, sample_index=first, n=size, **params), role)
        if len(out) < size:  # the server ignored n: ask for the rest one by one
            base_backend(backend).supports_n = False
            _tell_once(backend, f"answered {len(out)} choice(s) to n={size}")
            have = {c.sample_index for c in out}
            out += await asyncio.gather(*(ctx.complete(messages, role=role, sample_index=i, use=use, **params)
                                          for i in range(first, first + size) if i not in have))
            out.sort(key=lambda c: c.sample_index)
        return out

    chunks = [(s, min(k, start + n - s)) for s in range(start, start + n, k)]
    parts = await asyncio.gather(*(one_request(s, size) for s, size in chunks))
    return [c for part in parts for c in part]

"""Per-sample sampling on the embedded model: llama.cpp sampler chains with their own seeds, and
the OpenAI logprobs of each drawn token (from the raw logits, as llama-cpp-python's server gave them)."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp.llama_cpp as lib
import numpy as np

PENALTY_LAST_N = 64
"""Generated tokens the repeat penalty looks back over (llama-cpp-python's `last_n_tokens_size`; like
its sampler, built afresh for each completion, ours never sees the prompt)."""


@dataclass(frozen=True)
class SamplingParams:
    """llama-cpp-python's server defaults, so answers keep their character."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1


def _penalties(n_vocab: int, p: SamplingParams) -> object:
    try:  # llama-cpp-python builds that still pass the vocabulary size
        return lib.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, p.repeat_penalty, 0.0, 0.0)
    except TypeError:
        return lib.llama_sampler_init_penalties(PENALTY_LAST_N, p.repeat_penalty, 0.0, 0.0)


def make_chain(p: SamplingParams, seed: int | None, n_vocab: int) -> object:
    """penalties -> top-k -> top-p -> min-p -> temperature -> draw (greedy at temperature 0)."""
    params = lib.llama_sampler_chain_default_params()
    params.no_perf = True
    chain = lib.llama_sampler_chain_init(params)

    def add(sampler: object) -> None:
        lib.llama_sampler_chain_add(chain, sampler)

    if p.repeat_penalty != 1.0:
        add(_penalties(n_vocab, p))
    if p.temperature <= 0:
        add(lib.llama_sampler_init_greedy())
    else:
        add(lib.llama_sampler_init_top_k(p.top_k))
        add(lib.llama_sampler_init_top_p(p.top_p, 1))
        add(lib.llama_sampler_init_min_p(p.min_p, 1))
        add(lib.llama_sampler_init_temp(p.temperature))
        add(lib.llama_sampler_init_dist(random.getrandbits(32) if seed is None else seed & 0xFFFFFFFF))
    return chain


def top_logprobs(logits: np.ndarray, token: int, k: int, piece: Callable[[int], bytes]) -> dict:
    """The OpenAI logprobs entry of `token`: its log-softmax and the `k` likeliest alternatives."""
    peak = float(logits.max())
    norm = peak + float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))
    entry = _entry(token, float(logits[token]) - norm, piece)
    top = []
    if k > 0:
        ids = np.argpartition(-logits, k)[:k] if k < len(logits) else np.arange(len(logits))
        ids = ids[np.argsort(-logits[ids], kind="stable")]
        top = [_entry(int(i), float(logits[i]) - norm, piece) for i in ids]
    entry["top_logprobs"] = top
    return entry


def _entry(token: int, logprob: float, piece: Callable[[int], bytes]) -> dict:
    raw = piece(token)
    return {"token": raw.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(raw)}


def token_pieces(vocab: object) -> Callable[[int], bytes]:
    """A token's bytes, looked up in llama.cpp once per token."""
    pieces: dict[int, bytes] = {}
    buf = ctypes.create_string_buffer(256)

    def piece(token: int) -> bytes:
        got = pieces.get(token)
        if got is None:
            n = lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
            got = pieces[token] = buf.raw[:max(0, n)]
        return got

    return piece

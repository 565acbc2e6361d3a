"""The embedded model's decoding engine: many sequences decoded together in one llama.cpp context.

One thread owns the context. A job is one prompt with `n` samples: the prompt is decoded once into
the first sequence and its KV cache copied to the others (`llama_memory_seq_cp`), then every live
sequence of every admitted job advances by one token per `llama_decode` (continuous batching: jobs
join and leave between steps). Each sample has its own sampler chain and seed, so a sample is the
same whether it was drawn alone or beside others (up to float rounding in batched matrix products).

A job is admitted when it has free sequence ids and room in the KV cache for its prompt plus
`n * max_new` tokens, so a decode never runs out of cells; jobs wait in order otherwise.
Runs inside the server child process only (it imports llama_cpp).
"""

from __future__ import annotations

import ctypes
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp.llama_cpp as lib
import numpy as np

from tts.local.sampler_chain import SamplingParams, make_chain, top_logprobs


@dataclass
class Sample:
    """One sequence: its sampler, where it is, and what it produced."""

    index: int
    seq: int
    chain: object
    pos: int
    data: bytearray = field(default_factory=bytearray)
    tokens: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # byte offset where each token's text ends
    logprobs: list[dict] = field(default_factory=list)
    finish: str | None = None
    text: str | None = None
    released: bool = False


@dataclass
class Job:
    prompt: list[int]
    n: int
    seed: int | None
    max_new: int
    params: SamplingParams
    stop: list[str]
    logprobs: int | None  # top_logprobs wanted per token; None: no logprobs
    done: Callable[[list[Sample]], None]
    fail: Callable[[BaseException], None]
    cancelled: bool = False
    holding: bool = False  # its cells are counted in Engine.reserved
    samples: list[Sample] = field(default_factory=list)

    @property
    def cells(self) -> int:
        return len(self.prompt) + self.n * self.max_new


class Engine:
    def __init__(self, model: object, *, cells: int, slots: int, threads: int, n_batch: int = 512) -> None:
        self.model = model  # llama_cpp's LlamaModel (weights and vocab)
        self.vocab = model.vocab  # type: ignore[attr-defined]
        self.n_vocab = lib.llama_vocab_n_tokens(self.vocab)
        params = lib.llama_context_default_params()
        params.n_ctx, params.n_seq_max, params.kv_unified = cells, slots, True
        params.n_batch = params.n_ubatch = max(n_batch, slots)
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        self.ctx = lib.llama_init_from_model(model.model, params)  # type: ignore[attr-defined]
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.cells = lib.llama_n_ctx(self.ctx)
        self.mem = lib.llama_get_memory(self.ctx)
        self.n_batch = params.n_batch
        self.batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self.slots = slots
        self.free_seqs = list(range(slots))
        self.reserved = 0
        self.active: list[tuple[Job, Sample]] = []
        self.inbox: deque[Job] = deque()
        self.wake = threading.Condition()
        self.pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        threading.Thread(target=self._run, name="tts-local-engine", daemon=True).start()

    # -- called from other threads ------------------------------------------------------------
    def capacity(self, prompt_len: int, max_new: int) -> int:
        """How many samples of one prompt fit in one job (more are split into several jobs)."""
        return max(1, min(self.slots, (self.cells - prompt_len) // max(1, max_new)))

    def submit(self, job: Job) -> None:
        with self.wake:
            self.inbox.append(job)
            self.wake.notify()

    # -- the engine thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.inbox and not self.active:
                    self.wake.wait()
            self._admit()
            if self.active:
                try:
                    self._step()
                except Exception as exc:  # a failed decode fails the jobs in it, not the server
                    for job in {id(j): j for j, _ in self.active}.values():
                        self._finish_job(job, exc)

    def _admit(self) -> None:
        while True:
            with self.wake:
                if not self.inbox:
                    return
                job = self.inbox[0]
                if job.cancelled:
                    self.inbox.popleft()
                    continue
                if job.n > len(self.free_seqs) or self.reserved + job.cells > self.cells:
                    return  # first come, first served: wait for room
                self.inbox.popleft()
            try:
                self._prefill(job)
            except Exception as exc:
                self._finish_job(job, exc)

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        b = self.batch
        for i, (token, pos, seq, out) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, out
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        rc = lib.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")

    def _prefill(self, job: Job) -> None:
        self.reserved += job.cells
        job.holding = True
        seqs = [self.free_seqs.pop() for _ in range(job.n)]
        first = seqs[0]
        job.samples = [Sample(i, s, make_chain(job.params, None if job.seed is None else job.seed + i, self.n_vocab),
                              len(job.prompt)) for i, s in enumerate(seqs)]
        p, last = job.prompt, 0
        for start in range(0, len(p), self.n_batch):
            chunk = p[start:start + self.n_batch]
            self._decode([(t, start + k, first, start + k == len(p) - 1) for k, t in enumerate(chunk)])
            last = len(chunk) - 1
        for s in seqs[1:]:
            lib.llama_memory_seq_cp(self.mem, first, s, -1, -1)
        for sample in job.samples:
            self.active.append((job, sample))
            self._take(job, sample, last)
        self._reap()

    def _step(self) -> None:
        live = [(j, s) for j, s in self.active if s.finish is None]
        self._decode([(s.tokens[-1], s.pos - 1, s.seq, True) for _, s in live])
        for i, (job, sample) in enumerate(live):
            if job.cancelled:
                sample.finish = "cancelled"
            else:
                self._take(job, sample, i)
        self._reap()

    def _take(self, job: Job, s: Sample, idx: int) -> None:
        """Sample the next token of `s` from output `idx` of the last decode."""
        token = lib.llama_sampler_sample(s.chain, self.ctx, idx)
        if lib.llama_vocab_is_eog(self.vocab, token):
            s.finish = "stop"
            return
        if job.logprobs is not None:
            logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self.ctx, idx), shape=(self.n_vocab,))
            s.logprobs.append(top_logprobs(logits, token, job.logprobs, self._piece))
        s.tokens.append(token)
        s.pos += 1
        s.data += self._piece(token)
        s.ends.append(len(s.data))
        if job.stop:
            text = s.data.decode("utf-8", "ignore")
            cuts = [i for i in (text.find(stop) for stop in job.stop) if i >= 0]
            if cuts:
                s.text, s.finish = text[:min(cuts)], "stop"
                return
        if len(s.tokens) >= job.max_new:
            s.finish = "length"

    def _piece(self, token: int) -> bytes:
        piece = self.pieces.get(token)
        if piece is None:
            n = lib.llama_token_to_piece(self.vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
            piece = self.pieces[token] = self._piece_buf.raw[:max(0, n)]
        return piece

    def _release(self, s: Sample) -> None:
        if not s.released:
            s.released = True
            lib.llama_memory_seq_rm(self.mem, s.seq, -1, -1)
            lib.llama_sampler_free(s.chain)
            self.free_seqs.append(s.seq)

    def _reap(self) -> None:
        """Free the sequences that finished, and answer the jobs whose samples all did."""
        keep, ended = [], {}
        for job, s in self.active:
            if s.finish is None:
                keep.append((job, s))
                continue
            self._release(s)
            if s.text is None:
                s.text = s.data.decode("utf-8", "replace")
            ended[id(job)] = job
        self.active = keep
        still = {id(j) for j, _ in keep}
        for key, job in ended.items():
            if key not in still:
                self._unhold(job)
                if not job.cancelled:
                    job.done(job.samples)

    def _unhold(self, job: Job) -> None:
        if job.holding:
            job.holding = False
            self.reserved -= job.cells

    def _finish_job(self, job: Job, exc: BaseException) -> None:
        for s in job.samples:
            self._release(s)
        self._unhold(job)
        self.active = [(j, s) for j, s in self.active if j is not job]
        job.fail(exc)

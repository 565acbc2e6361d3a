"""The embedded model's decoding engine: many sequences decoded together in one llama.cpp context.

One thread owns the context. A job is one prompt with `n` samples: the prompt is decoded once into
one sequence and its KV cache copied to the others (`llama_memory_seq_cp`), then every live
sequence of every running job advances by one token per `llama_decode` (continuous batching).
Each sample has its own sampler chain and seed, so a sample is the same whether it was drawn alone
or beside others (up to float rounding in batched matrix products).

No sequence idles while there is work: a job starts as many samples as there are free sequences,
the rest as sequences free up, each from a copy of its prompt (a finished sample's sequence, cut
back to the prompt, goes to its job's next sample); free sequences go first to the running jobs,
in the order they came, then to the next job waiting. A prompt is decoded from where it parts
from what the cache holds: a running job's prompt, or a finished job's last sequence (prompt and
reply; the newest `KEEP` stay while no job needs their sequences or cells), so an agent's next
turn decodes only what it adds. KV cells are not reserved for the longest reply a request allows
(that would run one job at a time): a job or sample starts while `HEADROOM` cells are free for
it, and if the cache fills, the youngest running job is preempted (its live samples are drawn
again later with the same seeds; finished ones are kept). The oldest job always fits alone (no
more than its `width` of samples is live at once), so the engine always makes progress. With
`follow_idle`, the threads follow the cores other processes leave idle (tts.local.idle_cores).
Runs inside the server child process only (it imports llama_cpp).
"""

from __future__ import annotations

import threading
from collections import deque

import llama_cpp.llama_cpp as lib
import numpy as np

from tts.local.batch_jobs import KEEP, Job, Kept, Sample, shared_prefix
from tts.local.idle_cores import ThreadTuner
from tts.local.sampler_chain import make_chain, token_pieces, top_logprobs

__all__ = ["Engine", "Job", "Sample"]


class Engine:
    def __init__(self, model: object, *, cells: int, slots: int, threads: int, n_batch: int = 512,
                 follow_idle: bool = False) -> None:
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
        self.running: list[Job] = []  # in the order they were admitted
        self.kept: list[Kept] = []  # finished jobs' sequences left in the cache, oldest first
        self.inbox: deque[Job] = deque()
        self.wake = threading.Condition()
        self.preempted = 0  # jobs preempted for lack of cells (read by tests)
        self.prefilled = 0  # prompt tokens decoded (the others were copied or kept)
        self.tuner = ThreadTuner(threads) if follow_idle else None
        self._piece = token_pieces(self.vocab)
        threading.Thread(target=self._run, name="tts-local-engine", daemon=True).start()

    # -- called from other threads ------------------------------------------------------------
    def width(self, prompt_len: int, max_new: int) -> int:
        """How many samples of one prompt may be live at once: all the slots, unless that many
        replies of `max_new` tokens would not fit in the cache beside the prompt."""
        return max(1, min(self.slots, (self.cells - prompt_len) // max(1, max_new)))

    def submit(self, job: Job) -> None:
        with self.wake:
            self.inbox.append(job)
            self.wake.notify()

    # -- the engine thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.inbox and not self.running:
                    self.wake.wait()
            if self.tuner is not None and (threads := self.tuner.due()) is not None:
                lib.llama_set_n_threads(self.ctx, threads, threads)
            try:
                self._schedule()
                self._step()
            except Exception as exc:  # a failed decode fails the jobs in it, not the server
                for job in list(self.running):
                    self._fail(job, exc)

    def _used(self) -> int:
        return sum(job.cells() for job in self.running) + sum(len(k.tokens) for k in self.kept)

    def _evict(self) -> bool:
        """Drop the oldest kept sequence; False if none is kept."""
        if not self.kept:
            return False
        self._free(self.kept.pop(0).seq)
        return True

    def _fits(self, cells: int) -> bool:
        """Are `cells` more cells free (dropping kept sequences, oldest first, to make room)?"""
        while self._used() + cells > self.cells and self._evict():
            pass
        return self._used() + cells <= self.cells

    def _can_seat(self) -> bool:
        """Is a sequence free (dropping the oldest kept one if none is)?"""
        return bool(self.free_seqs) or self._evict()

    def _has_room(self, job: Job) -> bool:
        """May `job` start one more sample now?"""
        return len(job.live) < job.width and self._fits(job.headroom())

    def _schedule(self) -> None:
        """Hand free sequences to waiting samples: the running jobs' first, then new jobs'."""
        self._drop_cancelled()
        for job in self.running:
            while job.waiting and self._can_seat() and self._has_room(job):
                self._start_from_copy(job, job.waiting.popleft())
        while True:
            with self.wake:
                if not self.inbox:
                    return
                job = self.inbox[0]
                if job.cancelled:
                    self.inbox.popleft()
                    continue
                if not self._can_seat() or (self.running and not self._fits(job.admission())):
                    return  # first come, first served: wait for room
                self.inbox.popleft()
            try:
                self._prefill(job)
            except Exception as exc:
                self._fail(job, exc)

    def _drop_cancelled(self) -> None:
        cancelled = [job for job in self.running if job.cancelled]
        for job in cancelled:
            job.waiting.clear()
            for s in job.live:
                s.finish = "cancelled"
        if cancelled:
            self._reap()

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> int:
        b = self.batch
        for i, (token, pos, seq, out) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, out
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        return int(lib.llama_decode(self.ctx, b))

    def _begin(self, job: Job, s: Sample, seq: int) -> None:
        """Give `s` a sequence holding the prompt (all of it, or all but its last token) and a sampler."""
        s.seq, s.feed = seq, (job.prompt[-1], len(job.prompt) - 1)
        s.chain = make_chain(job.params, s.seed, self.n_vocab)

    def _prefill(self, job: Job) -> None:
        """Decode the prompt once into one sequence; start as many samples as there are free sequences."""
        first, p = job.waiting.popleft(), job.prompt
        kept, source, shared = shared_prefix(p, self.running, self.kept)
        if kept is not None:  # a kept sequence starts this prompt: the job takes it, cut back to where they part
            self.kept.remove(kept)
            lib.llama_memory_seq_rm(self.mem, kept.seq, shared, -1)
            self._begin(job, first, kept.seq)
        else:
            self._begin(job, first, self.free_seqs.pop())
            if shared:  # a prompt that starts like one being decoded (a system prompt, an agent's history)
                lib.llama_memory_seq_cp(self.mem, source, first.seq, 0, shared)
        self.running.append(job)
        self.prefilled += len(p) - shared
        last = 0
        for start in range(shared, len(p), self.n_batch):
            chunk = p[start:start + self.n_batch]
            rc = self._decode([(t, start + k, first.seq, start + k == len(p) - 1) for k, t in enumerate(chunk)])
            if rc != 0:
                raise RuntimeError(f"llama_decode failed on a prompt ({rc})")
            last = len(chunk) - 1
        started = [first]
        while job.waiting and self._can_seat() and self._has_room(job):
            s = job.waiting.popleft()
            self._begin(job, s, self.free_seqs.pop())
            lib.llama_memory_seq_cp(self.mem, first.seq, s.seq, -1, -1)
            started.append(s)
        for s in started:  # all draw their first token from the prompt's last logits
            self._take(job, s, last)
        self._reap()

    def _start_from_copy(self, job: Job, s: Sample) -> None:
        """Start `s` on a free sequence from a live sibling's prompt; it decodes the prompt's last token next step."""
        source = job.live[0].seq
        self._begin(job, s, self.free_seqs.pop())
        lib.llama_memory_seq_cp(self.mem, source, s.seq, 0, len(job.prompt) - 1)

    def _step(self) -> None:
        live = [(j, s) for j in self.running for s in j.live]
        while live and not self._fits(len(live)) and len(self.running) > 1:
            self._preempt(self.running[-1])
            live = [(j, s) for j in self.running for s in j.live]
        if not live:
            return
        rc = self._decode([(*s.feed, s.seq, True) for _, s in live])
        if rc == 1:  # no room in the KV cache: make some (a kept sequence, else the youngest job) and try again
            if self._evict():
                return
            if len(self.running) > 1:
                self._preempt(self.running[-1])
                return
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")
        for i, (job, sample) in enumerate(live):
            self._take(job, sample, i)
        self._reap()

    def _preempt(self, job: Job) -> None:
        """Drop the live samples of `job` and queue it first: they are drawn again with the same seeds."""
        for s in job.live:
            self._free(s.seq)
            self._drop_chain(s)
            s.restart()
        job.waiting = deque(s for s in job.samples if s.finish is None)
        self.running.remove(job)
        job.preempted = True
        self.preempted += 1
        with self.wake:
            self.inbox.appendleft(job)

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
        s.feed = (token, s.feed[1] + 1)
        before = len(s.data)
        s.data += self._piece(token)
        s.ends.append(len(s.data))
        if job.stop and (cut := job.stop_at(s.data, before)) is not None:
            s.text, s.finish = s.data[:cut].decode("utf-8", "replace"), "stop"
            return
        if len(s.tokens) >= job.max_new:
            s.finish = "length"

    def _free(self, seq: int) -> None:
        lib.llama_memory_seq_rm(self.mem, seq, -1, -1)
        self.free_seqs.append(seq)

    @staticmethod
    def _drop_chain(s: Sample) -> None:
        if s.chain is not None:
            lib.llama_sampler_free(s.chain)
            s.chain = None

    def _reap(self) -> None:
        """Pass finished samples' sequences on (to their job's next sample, else free them) and
        answer the jobs whose samples all finished."""
        for job in list(self.running):
            for s in job.samples:
                if s.finish is None or s.seq < 0:
                    continue
                seq, s.seq = s.seq, -1
                if s.text is None:
                    s.text = s.data.decode("utf-8", "replace")
                self._drop_chain(s)
                if job.waiting and not job.cancelled:  # keep the prompt, drop the reply: the next sample starts there
                    lib.llama_memory_seq_rm(self.mem, seq, len(job.prompt) - 1, -1)
                    self._begin(job, job.waiting.popleft(), seq)
                elif job.cancelled or any(o.seq >= 0 for o in job.samples):
                    self._free(seq)
                else:  # the job's last sequence: kept for a next request that starts with its prompt and reply
                    held = lib.llama_memory_seq_pos_max(self.mem, seq) + 1  # cut by max_tokens: all but the last
                    self.kept.append(Kept(seq, (job.prompt + s.tokens)[:held]))
                    while len(self.kept) > KEEP:
                        self._evict()
            if job.over:
                self.running.remove(job)
                if not job.cancelled:
                    job.done(job.samples)

    def _fail(self, job: Job, exc: BaseException) -> None:
        for s in job.samples:
            if s.seq >= 0:
                self._free(s.seq)
                self._drop_chain(s)
                s.seq = -1
        if job in self.running:
            self.running.remove(job)
        job.fail(exc)


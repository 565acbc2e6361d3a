"""What the embedded model's engine decodes: a job (one prompt, `n` samples) and its samples.

A sample is waiting (no sequence yet), live (it holds a sequence and is fed one token per step)
or finished. Its `feed` is the next token to decode and its position: the prompt's last token for a
sample started from a copy of the prompt, else the token it drew last.
Plain data, no llama.cpp: the engine (tts.local.batch_engine) does the decoding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tts.local.sampler_chain import SamplingParams

HEADROOM = 256
"""KV cells a starting sample is expected to need (capped by its max_tokens): a job or a sample
starts only while that much is free, so a full cache preempts rarely."""
KEEP = 4
"""Finished requests whose last sequence (prompt and reply) stays in the KV cache, for a next
request that starts the same way: an agent's next turn, the next of one-at-a-time samples."""


@dataclass
class Sample:
    """One sample: its seed, its sequence and sampler while live, and what it produced."""

    index: int
    seed: int | None
    seq: int = -1
    chain: object = None
    feed: tuple[int, int] = (0, 0)
    data: bytearray = field(default_factory=bytearray)
    tokens: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # byte offset where each token's text ends
    logprobs: list[dict] = field(default_factory=list)
    finish: str | None = None
    text: str | None = None

    @property
    def live(self) -> bool:
        return self.seq >= 0 and self.finish is None

    def restart(self) -> None:
        """Forget what was drawn (its sequence was preempted): drawn again later with the same seed."""
        self.seq, self.chain, self.feed = -1, None, (0, 0)
        self.data, self.tokens, self.ends, self.logprobs = bytearray(), [], [], []
        self.finish = self.text = None


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
    width: int = 1 << 30  # samples live at once, at most (Engine.width)
    cancelled: bool = False
    preempted: bool = False
    stop_bytes: list[bytes] = field(init=False)
    samples: list[Sample] = field(default_factory=list)
    waiting: deque[Sample] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.stop_bytes = [stop.encode() for stop in self.stop]  # what the engine looks for in a reply's bytes
        if not self.samples:
            self.samples = [Sample(i, None if self.seed is None else self.seed + i) for i in range(self.n)]
            self.waiting = deque(self.samples)

    @property
    def live(self) -> list[Sample]:
        return [s for s in self.samples if s.live]

    @property
    def over(self) -> bool:
        """Every sample finished (or the job was cancelled and none is live)."""
        return not self.waiting and not self.live

    def cells(self) -> int:
        """KV cells the job holds now: its prompt (shared by its sequences) and each live sample's own."""
        live = self.live
        if not live:
            return 0
        return len(self.prompt) + sum(max(0, pos - len(self.prompt) + 1) for _, pos in (s.feed for s in live))

    def stop_at(self, data: bytearray, before: int) -> int | None:
        """Where the reply `data` ends at a stop string, if one ends in its bytes from `before` on
        (a stop string not in the reply before the last token can only end inside its bytes)."""
        cuts = [i for i in (data.find(stop, max(0, before - len(stop) + 1)) for stop in self.stop_bytes) if i >= 0]
        return min(cuts) if cuts else None

    def headroom(self) -> int:
        """Cells one more sample is expected to need."""
        return min(self.max_new, HEADROOM)

    def admission(self) -> int:
        """Cells to have free before the job (re)starts: its prompt and one sample's headroom; a
        preempted job waits until all it can have live at once fits, so it is not preempted again."""
        if self.preempted:
            return len(self.prompt) + min(len(self.waiting), self.width) * self.max_new
        return len(self.prompt) + self.headroom()


@dataclass
class Kept:
    """A finished request's sequence left in the cache: it holds `tokens` at positions 0, 1, ..."""

    seq: int
    tokens: list[int]


def shared_prefix(prompt: list[int], running: list[Job], kept: list[Kept]) -> tuple[Kept | None, int, int]:
    """The sequence whose cells hold the longest start of `prompt` (a running job's, else a kept
    one, returned first), and that start's length: at most all but the prompt's last token, which
    is decoded for its logits."""
    best: tuple[Kept | None, int, int] = (None, -1, 0)
    for job in running:
        live = job.live
        if not live or job.cancelled:
            continue
        # every live sequence holds all its prompt but the last token
        n = _common(job.prompt, prompt, min(len(job.prompt), len(prompt)) - 1)
        if n > best[2]:
            best = (None, live[0].seq, n)
    for k in kept:
        n = _common(k.tokens, prompt, min(len(k.tokens), len(prompt) - 1))
        if n > best[2]:
            best = (k, k.seq, n)
    return best


def _common(a: list[int], b: list[int], limit: int) -> int:
    """How many tokens `a` and `b` share at their start, up to `limit`."""
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n

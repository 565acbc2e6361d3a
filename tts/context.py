"""Per-run state. A strategy holds configuration only; everything that changes during a run
(the trace, the usage, the random streams, where in the strategy tree a call comes from)
lives in a `RunContext`, so one strategy instance can serve many tasks at once."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from tts.errors import BackendError, BudgetExceeded
from tts.records import CallRecord, Completion, Message, Record, Usage, trusted
from tts.redact import redact
from tts.seam import Backend, ChatRequest
from tts.tool_calls import under_turn

CANDIDATE_ROLES = frozenset({"sample", "draft", "refine", "solve"})
"""Trace roles whose answers are attempts at the task itself. Every other role (judge, distill,
summarize, feedback, grade, confirm, score, ...) is about candidates and is never one."""


class SamplingDefaults(Record):
    """Run-wide sampling parameters; a strategy may override them per role."""

    temperature: float | None = 0.7
    max_tokens: int | None = 512
    seed: int | None = None
    """When set, every call gets seed + sample index, so samples stay distinct and reproducible.
    `run(..., seed=S)` sets it (and seeds the run's random streams with the same S)."""
    n_per_request: int = Field(1, ge=1)
    """Samples of one prompt per request (`n=K`; see `tts.batching`); 1: one request per sample."""
    extra: dict[str, Any] = Field(default_factory=dict)


LOGPROBS = {"logprobs": True, "top_logprobs": 5}  # when a component reads the candidates' logprobs (self-certainty's k)


def defaults_for(defaults: SamplingDefaults, *strategies: Any) -> SamplingDefaults:
    """`defaults` with what these strategies need of every call (`tts.registry.needs`): logprobs
    when a component reads them. The one place `tts run`, `tts compare`, `tts serve` and
    `run_task` decide it (compare passes every strategy of its grid, so their samples stay shared)."""
    from tts.registry import needs

    if "logprobs" in needs(*strategies) and "logprobs" not in defaults.extra:
        return defaults.model_copy(update={"extra": {**defaults.extra, **LOGPROBS}})
    return defaults


@functools.lru_cache(maxsize=4096)
def replica_offset(replica: str) -> int:
    """The seed offset of a nested copy (hashed once per replica name, not once per call)."""
    return int(hashlib.sha256(replica.encode()).hexdigest()[:6], 16) if replica else 0


def call_record(path: str, role: str, sample_index: int, usage: Usage, latency_s: float, cached: bool,
                started_s: float, error: str | None = None, stopped: bool = False) -> CallRecord:
    """A trace entry from figures the run measured itself: built without validation (an error
    through the one redactor: a provider's error may quote the key)."""
    return trusted(CallRecord, {"path": path, "role": role, "sample_index": sample_index, "usage": usage,
                                "latency_s": latency_s, "cached": cached, "started_s": started_s,
                                "error": None if error is None else redact(error), "stopped": stopped,
                                "messages": None, "reply": None})


def reply_text(comp: Completion) -> str:
    """A reply as the trace keeps it: its text, and its tool calls rendered when it made any."""
    if not comp.tool_calls:
        return comp.text
    from tts.tool_calls import render_tool_calls

    return render_tool_calls(comp.text, comp.tool_calls)


def with_content(rec: CallRecord, messages: list[Message], reply: str | None) -> CallRecord:
    """`rec` holding what was said (the request's own list, not a copy)."""
    rec.__dict__["messages"] = messages
    rec.__dict__["reply"] = reply
    return rec


class RunContext:
    """Where a call comes from and where its record goes.

    `backends["default"]` answers every role unless another entry is named by `use=`
    (e.g. `use="judge"` when a separate judge model is configured).
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        backends: dict[str, Backend] | None = None,
        defaults: SamplingDefaults | None = None,
        seed: int = 0,
        path: str = "",
        replica: str = "",
        parent: RunContext | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        turn: dict[str, Any] | None = None,
    ) -> None:
        self.backends: dict[str, Backend] = dict(backends or {})
        if backend is not None:
            self.backends["default"] = backend
        if "default" not in self.backends:
            raise ValueError("RunContext needs a backend")
        self.defaults = defaults or SamplingDefaults()
        self.seed = seed
        self.path = path
        self.replica = replica
        self.parent = parent
        self.on_call = on_call
        self.records: list[CallRecord] = []
        self.answered: list[tuple[CallRecord, Completion]] = []
        """Every call answered in this subtree with its completion, kept so a run cut short (a
        cap, a cancellation, a timeout) still returns what it has."""
        self.t0 = parent.t0 if parent is not None else time.perf_counter()
        self.root: RunContext = parent.root if parent is not None else self
        self.content = False
        """On the root: keep each call's messages and reply in its record (`run_task(trace_content=True)`)."""
        self.stopped: str | None = None
        """Set on the root when the run must send no more calls (why, e.g. the cap's message)."""
        self._in_flight = 0
        self._idle: asyncio.Event | None = None
        self._kept: dict[tuple[str, str], Any] = {} if parent is None else parent.root._kept
        self.turn = turn if parent is None else parent.root.turn
        """The task's turn (`tts.tool_calls.turn_params`): tools, tool choice, response format and a
        client's parameters, given to every call in a CANDIDATE_ROLES role and to no other."""

    # -- tree ---------------------------------------------------------------------------
    def child(self, name: str, replica: str | int | None = None) -> RunContext:
        """A context for a component. Pass `replica` when several copies of the same component
        run on the same inputs (e.g. the i-th PDR run inside RTV) so their samples differ."""
        rep = self.replica
        if replica is not None:
            rep = f"{rep}.{replica}" if rep else str(replica)
        return RunContext(
            backends=self.backends,
            defaults=self.defaults,
            seed=self.seed,
            path=f"{self.path}/{name}" if self.path else name,
            replica=rep,
            parent=self,
            on_call=self.on_call,
        )

    def rng(self, salt: str = "") -> random.Random:
        """A random stream that depends only on the seed, the path, the replica and `salt`."""
        key = f"{self.seed}|{self.path}|{self.replica}|{salt}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    @property
    def usage(self) -> Usage:
        """What this subtree's answers consumed: every call, cache hits included."""
        return Usage.total(r.usage for r in self.records)

    @property
    def paid(self) -> Usage:
        """What this subtree paid in this run: `usage` without the cache hits."""
        paid = Usage.total(r.usage for r in self.records if not r.cached)  # = the sum of each record's `paid`
        paid.cached_calls = 0
        return paid

    def why_stopped(self) -> str | None:
        return self.root.stopped

    def stop(self, reason: str) -> None:
        """No further call of this run is sent (calls in flight finish and are counted)."""
        if self.root.stopped is None:
            self.root.stopped = reason

    async def drained(self) -> None:
        """Wait until no call of this run is in flight."""
        root = self.root
        if root._in_flight:
            if root._idle is None:
                root._idle = asyncio.Event()
            await root._idle.wait()

    def keep(self, key: str, value: Any) -> None:
        """Remember a piece of progress (e.g. a tournament's survivors) under this path, for the
        partial result of a run that is cut short."""
        self._kept[(self.path, key)] = value

    def kept(self, key: str, default: Any = None) -> Any:
        return self._kept.get((self.path, key), default)

    def candidates_so_far(self) -> list[tuple[CallRecord, Completion]]:
        """The answered calls that are attempts at the task (see CANDIDATE_ROLES), in answer order."""
        return [(r, c) for r, c in self.answered if r.role in CANDIDATE_ROLES]

    def _record(self, rec: CallRecord, comp: Completion | None = None) -> None:
        ctx: RunContext | None = self
        while ctx is not None:
            ctx.records.append(rec)
            if comp is not None:
                ctx.answered.append((rec, comp))
            ctx = ctx.parent
        if self.on_call is not None:
            self.on_call(rec)

    # -- calls ----------------------------------------------------------------------------
    def request(self, messages: Sequence[Message | dict], *, sample_index: int = 0, **params: Any) -> ChatRequest:
        msgs = [m if isinstance(m, Message) else Message(**m) for m in messages]
        d = self.defaults
        # Nested copies send the same messages with the same sample indices: fold the replica
        # into the seed too, or a seeded provider would return identical samples to each copy.
        seed = None if d.seed is None else d.seed + sample_index + replica_offset(self.replica)
        if not params:  # the common case: every field is already valid (messages, defaults), so no validation
            return trusted(ChatRequest, {
                "messages": msgs, "n": 1, "sample_index": sample_index, "replica": self.replica, "seed": seed,
                "temperature": d.temperature, "max_tokens": d.max_tokens, "stop": None, "logprobs": None,
                "top_logprobs": None, "tools": None, "extra": dict(d.extra), "on_token": None,
                "halted": self.why_stopped})
        fields: dict[str, Any] = {"temperature": d.temperature, "max_tokens": d.max_tokens}
        if seed is not None:
            fields["seed"] = seed
        extra = {**d.extra, **params.pop("extra", {})}
        fields.update({k: v for k, v in params.items()})
        return ChatRequest(messages=msgs, sample_index=sample_index, replica=self.replica, extra=extra,
                           halted=self.why_stopped, **fields)

    async def complete(
        self, messages: Sequence[Message | dict], *, role: str, sample_index: int = 0, use: str = "default",
        **params: Any,
    ) -> Completion:
        """One completion. `role` names the call in the trace (draft, judge, distill, ...); a call in a
        candidate role answers the task, so it carries the task's turn (its tools, format, ...)."""
        if self.turn is not None and role in CANDIDATE_ROLES:
            params = under_turn(params, self.turn)
        req = self.request(messages, sample_index=sample_index, **params)
        return (await self.call(self.backends.get(use) or self.backends["default"], req, role))[0]

    async def call(self, backend: Backend, req: ChatRequest, role: str) -> list[Completion]:
        """Send `req` unless the run was stopped, counting it as in flight (so a stopped run can wait
        for what it has paid for; a cap reached stops the whole run), and put each of its answers
        (`req.n` choices) in the trace as its own call; a failure is recorded too, then raised."""
        started = time.perf_counter()
        root = self.root
        if root.stopped is not None:  # cut short: send nothing more
            raise BudgetExceeded(root.stopped)
        root._in_flight += 1
        try:
            out = await backend.complete(req)
        except BudgetExceeded as exc:
            root.stop(str(exc))  # the run's other calls stop too: no call is sent past a cap
            raise
        except BackendError as exc:
            rec = call_record(self.path, role, req.sample_index, Usage.of(), time.perf_counter() - started,
                              False, started - self.t0, f"{type(exc).__name__}: {exc}")
            self._record(with_content(rec, req.messages, None) if self.root.content else rec)
            raise
        finally:
            root._in_flight -= 1
            if not root._in_flight and root._idle is not None:
                root._idle.set()
                root._idle = None
        latency = time.perf_counter() - started
        content = self.root.content
        if req.n == 1:
            comp = out[0]
            rec = call_record(self.path, role, req.sample_index, comp.usage, latency, comp.cached, started - self.t0,
                              stopped=comp.stopped)
            self._record(with_content(rec, req.messages, reply_text(comp)) if content else rec, comp)
            return out
        out = out[:req.n]  # each choice carries its own sample index (the cache may mix hits in)
        for c in out:
            rec = call_record(self.path, role, c.sample_index, c.usage, latency, c.cached, started - self.t0,
                              stopped=c.stopped)
            self._record(with_content(rec, req.messages, reply_text(c)) if content else rec, c)
        return out

    async def sample(self, messages: Sequence[Message | dict], n: int, *, role: str, start: int = 0,
                     per_request: int | None = None, **params: Any) -> list[Completion]:
        """`n` independent samples in parallel, sample indices start..start+n-1; `per_request` (default
        `defaults.n_per_request`) samples per request where the backend supports `n`."""
        k = per_request or self.defaults.n_per_request
        if self.turn is not None and role in CANDIDATE_ROLES:
            params = under_turn(params, self.turn)
        if k > 1 and n > 1:
            from tts.batching import sample_batched

            return await sample_batched(self, messages, n, k, role=role, start=start, **params)
        return list(await asyncio.gather(*(
            self.complete(messages, role=role, sample_index=start + i, **params) for i in range(n)
        )))

"""AccountingBackend: prices every answer, totals what was paid, and enforces hard caps.

Pricing (`tts.wrappers.pricing`): each answered completion gets its list price written into
`usage.cost_usd` (and `usage.unpriced_calls=1` when its model has no known price), so a result, a
cache entry and a trace all carry the same figure.

Totals (`usage`) are what was paid at the provider: cache hits add only `cached_calls`.

Caps are a contract at the provider: before a call is sent, its worst case is reserved (an upper
bound on its prompt tokens plus `max_tokens` per choice, priced at list price) and the call is sent
only if spent + reserved + worst case fits every cap; when the answer arrives the reservation is
replaced by the real figures. A call that does not fit only because of other calls' reservations
waits for them to settle; one that would not fit even then is not sent: `BudgetExceeded`. So with
any number of calls in flight the total paid never exceeds a cap. Where the worst case cannot be
bounded (a request without `max_tokens`, a model without a price under `max_cost`) one line says
so, once, in the log and in `notes`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from tts._litellm import is_imported
from tts.errors import BudgetExceeded
from tts.records import Completion, Usage
from tts.seam import Backend, BackendWrapper, ChatRequest
from tts.wrappers.call_timeout import pause_call_timeout, start_call_timeout
from tts.wrappers.pricing import Pricing, base_model

log = logging.getLogger("tts.budget")

PROMPT_OVERHEAD_PER_MESSAGE = 8
"""Tokens a chat template may add around each message (role markers, separators)."""
PROMPT_OVERHEAD_PER_REQUEST = 48
"""Tokens a chat template may add once per request (a default system prompt, generation prompt)."""


def prompt_token_bound(request: ChatRequest) -> int:
    """An upper bound on the prompt tokens a server counts for `request`: one token per character
    of each message's JSON text (which is at least its UTF-8 byte count, and no byte-level BPE
    token is shorter than a byte), plus the chat template's overhead. Deliberately loose: it only
    has to hold, the reservation is released when the real count arrives."""
    total = PROMPT_OVERHEAD_PER_REQUEST
    for m in request.messages:
        total += PROMPT_OVERHEAD_PER_MESSAGE + len(m.role) + len(json.dumps(m.content))
        if m.tool_calls:
            total += len(json.dumps(m.tool_calls))
        if m.name:
            total += len(m.name)
    if request.tools:
        total += len(json.dumps(request.tools))
    return total


class AccountingBackend(Pricing, BackendWrapper):
    def __init__(
        self,
        inner: Backend,
        max_calls: int | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        *,
        prices: Mapping[str, tuple[float, float]] | None = None,
        pricing: bool = True,
        shared: AccountingBackend | None = None,
    ) -> None:
        """`prices`: USD per prompt token and per completion token, by model name, taking precedence
        over litellm's table. `pricing=False` never consults litellm (every model is unpriced).
        `shared`: another model's accounting whose caps this one also obeys and whose totals it
        adds to, so a run with a separate judge model has one budget."""
        super().__init__(inner)
        self.shared = shared
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self.prices = dict(prices or {})
        self.pricing = pricing
        self.model = base_model(inner)
        self.notes: set[str] = set()
        self._prompt = self._completion = self._calls = self._cached = self._unpriced = self._cached_tokens = 0
        self._cost = 0.0
        self._in_flight = 0
        self._reserved_tokens = 0
        self._reserved_cost = 0.0
        self._waiters: list[asyncio.Future[None]] = []
        self._priced: dict[str, bool] = {}
        self._noted: set[str] = set()
        self._loading: asyncio.Future[Any] | None = None
        self._table: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        """What was paid at the provider so far (cache hits only count in `cached_calls`)."""
        return Usage(prompt_tokens=self._prompt, completion_tokens=self._completion, calls=self._calls,
                     cached_calls=self._cached, cost_usd=self._cost, unpriced_calls=self._unpriced,
                     cached_tokens=self._cached_tokens)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def capped(self) -> bool:
        return (self.max_calls is not None or self.max_tokens is not None or self.max_cost_usd is not None
                or (self.shared is not None and self.shared.capped))

    def over_cap(self) -> str | None:
        """Why no call at all may start now (a cap already reached by what was paid), or None."""
        return self._misfit(0, 0.0, reserved=False, new=False)

    def _misfit(self, tokens: int, cost: float, *, reserved: bool, new: bool = True) -> str | None:
        """Why one more call of worst case (`tokens`, `cost`) does not fit the caps, counting the
        reservations of the calls in flight when `reserved`, or None. The shared ledger too."""
        if self.shared is not None and (
                reason := self.shared._misfit(tokens, cost, reserved=reserved, new=new)) is not None:
            return reason
        if not new:  # is a cap already reached?
            if self.max_calls is not None and self._calls >= self.max_calls:
                return f"max_calls={self.max_calls} reached ({self._calls} answered)"
            if self.max_tokens is not None and self._prompt + self._completion >= self.max_tokens:
                return f"max_tokens={self.max_tokens} reached ({self._prompt + self._completion} tokens used)"
            if self.max_cost_usd is not None and self._cost >= self.max_cost_usd:
                return f"max_cost=${self.max_cost_usd:g} reached (${self._cost:.6f} spent)"
            return None
        flying, held, held_cost = ((self._in_flight, self._reserved_tokens, self._reserved_cost) if reserved
                                   else (0, 0, 0.0))
        if self.max_calls is not None and self._calls + flying + 1 > self.max_calls:
            return f"max_calls={self.max_calls} reached ({self._calls} answered, {self._in_flight} in flight)"
        used = self._prompt + self._completion
        if self.max_tokens is not None and used + held + tokens > self.max_tokens:
            return (f"max_tokens={self.max_tokens} reached ({used:,} tokens used, {held:,} reserved by calls in "
                    f"flight, the next call may need {tokens:,})")
        if self.max_cost_usd is not None and self._cost + held_cost + cost > self.max_cost_usd:
            return (f"max_cost=${self.max_cost_usd:g} reached (${self._cost:.6f} spent, ${held_cost:.6f} reserved "
                    f"by calls in flight, the next call may cost ${cost:.6f})")
        return None

    def _ledgers(self) -> list[AccountingBackend]:
        return [self] if self.shared is None else [self, self.shared]

    async def complete(self, request: ChatRequest) -> list[Completion]:
        tokens, cost = await self._room_for(request) if self.capped else (0, 0.0)
        if request.halted is not None and (why := request.halted()) is not None:  # the last layer before the model
            raise BudgetExceeded(f"{why}; the call was not sent", usage=self.usage)
        if self._loading is None:
            self._prefetch_price_table()
        if self.shared is None and not tokens and not cost:  # nothing reserved: only count the call in flight
            self._in_flight += 1
            try:
                out = await self.inner.complete(request)
            finally:
                self._in_flight -= 1
                if self._waiters:
                    self._wake()
            if self._needs_table(out):
                await self._load_price_table()
            out = self.priced(out)
            self.record(out)
            return out
        return await self._send_reserved(request, tokens, cost)

    async def _room_for(self, request: ChatRequest) -> tuple[int, float]:
        """The call's worst case (tokens, USD), once it fits every cap (waiting for calls in flight to settle)."""
        if self.pricing and self._table is None and not is_imported() and self.model not in self.prices:
            await self._load_price_table()  # the worst case needs the price before the call is sent
        tokens, cost = self.worst_case(request)
        while (reason := self._misfit(tokens, cost, reserved=True)) is not None:
            if self._misfit(tokens, cost, reserved=False) is not None:
                raise BudgetExceeded(f"budget: {reason}; the call was not sent", usage=self.usage)
            # It fits once the calls in flight settle: wait for one to, without running the call's clock.
            pause_call_timeout()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for ledger in self._ledgers():
                ledger._waiters.append(waiter)
            try:
                await waiter
            finally:
                for ledger in self._ledgers():
                    if waiter in ledger._waiters:
                        ledger._waiters.remove(waiter)
            start_call_timeout()
        return tokens, cost

    async def _send_reserved(self, request: ChatRequest, tokens: int, cost: float) -> list[Completion]:
        ledgers = self._ledgers()
        for ledger in ledgers:  # reserve before awaiting, so concurrent calls see it
            ledger._in_flight += 1
            ledger._reserved_tokens += tokens
            ledger._reserved_cost += cost
        try:
            out = await self.inner.complete(request)
            if self._needs_table(out):
                await self._load_price_table()
            out = self.priced(out)
            self.record(out)
        finally:
            for ledger in ledgers:
                ledger._in_flight -= 1
                ledger._reserved_tokens -= tokens
                ledger._reserved_cost -= cost
                ledger._wake()
        return out

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def worst_case(self, request: ChatRequest) -> tuple[int, float]:
        """The most `request` can cost: (tokens, USD at list price). A request without max_tokens
        has no bound on its reply; it is reserved as its prompt only, and said so once."""
        prompt = prompt_token_bound(request)
        if request.max_tokens is None:
            self.preflight(None)
            completion = 0
        else:
            completion = request.max_tokens * request.n
        cost = 0.0
        if self._cost_capped():
            price = self._price(self.model, prompt, completion)
            if price is None:
                self._note_unpriced()
            else:
                cost = price
        return prompt + completion, cost

    def _cost_capped(self) -> bool:
        return self.max_cost_usd is not None or (self.shared is not None and self.shared._cost_capped())

    def _note_unpriced(self) -> None:
        self.note_once("unpriced-cap", f"budget: no price known for model {self.model!r}, so max_cost cannot apply "
                       f"to its calls (they count against max_tokens_total and max_calls only)")

    def preflight(self, max_tokens: int | None) -> None:
        """Say at start-up, once each, what the caps cannot bound: replies without `max_tokens`
        (the per-call limit the run will send), a model without a price under a cost cap."""
        token_or_cost = self.max_tokens is not None or self._cost_capped() or (
            self.shared is not None and self.shared.max_tokens is not None)
        if max_tokens is None and token_or_cost:
            self.note_once("unbounded", "budget: calls without max_tokens have no worst case, so max_tokens_total and "
                           "max_cost can be overshot by their replies; set max_tokens to make the caps hold")
        if self._cost_capped() and self._price(self.model, 1, 1) is None:
            self._note_unpriced()

    def note_once(self, key: str, message: str) -> None:
        """Say `message` once per ledger: in the log and in `notes`."""
        if key in self._noted:
            return
        self._noted.add(key)
        self.notes.add(message)
        log.warning("%s", message)

    def record(self, completions: list[Completion]) -> None:
        """Add one call's completions (paid or cached) to the totals, and to the shared ledger."""
        u = self.usage_of(completions)
        self._apply(u)
        if self.shared is not None:
            self.shared._apply(u)

    def usage_of(self, completions: list[Completion]) -> Usage:
        """What these completions cost this ledger: priced answers; a cache hit only counts as cached.
        (Read only: the usual answer, one paid and priced, is returned as its own usage.)"""
        if len(completions) == 1 and not (c := completions[0]).cached and not (u := c.usage).cached_calls \
                and (u.cost_usd or u.unpriced_calls or not u.calls):
            return u
        cached = 0
        paid = []
        for c in completions:
            u = c.usage
            if c.cached:
                cached += u.cached_calls
                continue
            if u.calls and not u.cost_usd and not u.unpriced_calls:
                u = self.priced([c])[0].usage
            paid.append(u)
        out = Usage.total(paid)
        out.cached_calls = cached
        return out

    def _apply(self, u: Usage) -> None:
        self._prompt += u.prompt_tokens
        self._completion += u.completion_tokens
        self._calls += u.calls
        self._cached += u.cached_calls
        self._cost += u.cost_usd
        self._unpriced += u.unpriced_calls
        self._cached_tokens += u.cached_tokens

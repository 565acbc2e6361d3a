"""AccountingBackend: totals what the calls cost and enforces hard caps.

Totals: tokens, calls answered, cached calls, USD. Prices come from `prices=` or litellm's price
table: through `litellm.cost_per_token` when litellm is loaded anyway (the litellm backend), else
read straight from the table file litellm ships, so the lean path never pays litellm's import. A
model with no known price costs 0, counts in `usage.unpriced_calls`, and is named in `notes`.
Cache hits are free.

Caps: a call that would start with a cap already reached is not sent; `BudgetExceeded` is raised
carrying the usage so far. Calls are reserved when they start, so calls running concurrently can
never together exceed `max_calls`. Token and USD caps are checked against what has been answered
(a call's size is unknown until it returns), so they can be overshot by the calls in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tts._litellm import import_litellm, is_imported, packaged_price_table, table_cost
from tts.backend import Backend, BackendWrapper, ChatRequest
from tts.errors import BudgetExceeded
from tts.records import Completion, Usage


class AccountingBackend(BackendWrapper):
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
        self.model = _base_model(inner)
        self.notes: set[str] = set()
        self._prompt = self._completion = self._calls = self._cached = self._unpriced = self._cached_tokens = 0
        self._cost = 0.0
        self._in_flight = 0
        self._priced: dict[str, bool] = {}
        self._noted: set[str] = set()
        self._loading: asyncio.Future[Any] | None = None
        self._table: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        return Usage(prompt_tokens=self._prompt, completion_tokens=self._completion, calls=self._calls,
                     cached_calls=self._cached, cost_usd=self._cost, unpriced_calls=self._unpriced,
                     cached_tokens=self._cached_tokens)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def over_cap(self) -> str | None:
        """Why the next call may not start, or None."""
        if self.shared is not None and (reason := self.shared.over_cap()) is not None:
            return reason
        if self.max_calls is not None and self._calls + self._in_flight >= self.max_calls:
            return (f"max_calls={self.max_calls} reached ({self._calls} answered, {self._in_flight} in flight)")
        if self.max_tokens is not None and self._prompt + self._completion >= self.max_tokens:
            return f"max_tokens={self.max_tokens} reached ({self._prompt + self._completion} tokens used)"
        if self.max_cost_usd is not None and self._cost >= self.max_cost_usd:
            return f"max_cost=${self.max_cost_usd:g} reached (${self._cost:.4f} spent)"
        return None

    async def complete(self, request: ChatRequest) -> list[Completion]:
        reason = self.over_cap()
        if reason is not None:
            hit = self._cached_answer(request)
            if hit is not None:  # not sent, so not past the cap
                self.record(hit)
                return hit
            raise BudgetExceeded(f"budget: {reason}; the call was not sent", usage=self.usage)
        ledgers = [self] if self.shared is None else [self, self.shared]
        for ledger in ledgers:
            ledger._in_flight += 1  # reserve before awaiting, so concurrent calls see it
        try:
            out = await self.inner.complete(request)
        finally:
            for ledger in ledgers:
                ledger._in_flight -= 1
        if self._table is None and self.pricing and not is_imported() and not self._all_priced(out):
            await self._load_price_table()
        self.record(out)
        return out

    def _all_priced(self, out: list[Completion]) -> bool:
        """True when `prices=` covers these completions, so no price table is needed."""
        return self.model in self.prices or all(c.cached or c.model in self.prices for c in out)

    async def _load_price_table(self) -> None:
        """Read the table in a thread (it is a few MB of JSON), once, for all calls waiting on it."""
        if self._loading is None or self._loading.get_loop() is not asyncio.get_running_loop():
            self._loading = asyncio.ensure_future(asyncio.to_thread(packaged_price_table))
        self._table = await asyncio.shield(self._loading)

    def record(self, completions: list[Completion]) -> None:
        """Add one call's completions (paid or cached) to the totals, and to the shared ledger."""
        u = self.usage_of(completions)
        self._apply(u)
        if self.shared is not None:
            self.shared._apply(u)

    def usage_of(self, completions: list[Completion]) -> Usage:
        """What these completions cost, priced for this model. Cache hits are free."""
        out = Usage()
        for c in completions:
            u = c.usage
            if c.cached:
                out.cached_calls += u.cached_calls
                continue
            out.prompt_tokens += u.prompt_tokens
            out.completion_tokens += u.completion_tokens
            out.calls += u.calls
            out.cached_tokens += u.cached_tokens
            cost = u.cost_usd or self._price(c.model, u.prompt_tokens, u.completion_tokens)
            if cost is None:
                out.unpriced_calls += u.calls
            else:
                out.cost_usd += cost
        return out

    def _apply(self, u: Usage) -> None:
        self._prompt += u.prompt_tokens
        self._completion += u.completion_tokens
        self._calls += u.calls
        self._cached += u.cached_calls
        self._cost += u.cost_usd
        self._unpriced += u.unpriced_calls
        self._cached_tokens += u.cached_tokens

    def _price(self, served: str | None, prompt: int, completion: int) -> float | None:
        for model in (self.model, served):
            if not model:
                continue
            if model in self.prices:
                per_prompt, per_completion = self.prices[model]
                return prompt * per_prompt + completion * per_completion
            known = self._priced.get(model)
            if known is False or not self.pricing:
                continue
            cost = self._lookup_price(model, prompt, completion)
            self._priced[model] = cost is not None
            if cost is not None:
                return cost
        name = self.model or served or "?"
        if name not in self._noted:
            self._noted.add(name)
            self.notes.add(f"no price known for model {name!r}: its calls count as $0")
        return None

    def _lookup_price(self, model: str, prompt: int, completion: int) -> float | None:
        if is_imported():  # litellm is loaded anyway (its backend): its own function, tiers and all
            try:
                a, b = import_litellm().cost_per_token(model=model, prompt_tokens=prompt, completion_tokens=completion)
            except Exception:  # litellm does not know the model
                return None
            return float(a) + float(b)
        if self._table is None:
            self._table = packaged_price_table()
        return table_cost(self._table, model, prompt, completion)

    def _cached_answer(self, request: ChatRequest) -> list[Completion] | None:
        from tts.wrappers.cache import CacheBackend

        inner = self.inner
        cache = inner.find(CacheBackend) if isinstance(inner, BackendWrapper) else None
        return cache.lookup(request) if cache is not None else None


def _base_model(backend: Backend) -> str | None:
    """The model name configured on the innermost backend of a stack, if it has one."""
    layer: object = backend
    while getattr(layer, "inner", None) is not None:
        layer = layer.inner  # type: ignore[attr-defined]
    model = getattr(layer, "model", None)
    return model if isinstance(model, str) else None

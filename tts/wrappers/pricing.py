"""The price half of `AccountingBackend`: list prices per model and the priced form of an answer.

Prices come from `prices=` (USD per prompt and per completion token, by model name) or litellm's
price table: through `litellm.cost_per_token` when litellm is loaded anyway (the litellm backend),
else read straight from the table file litellm ships, so the lean path never pays litellm's import.
A model with no known price costs 0 and is named in `notes`. Whether a model has a price is looked
up once per model, so pricing an answer costs a dict look-up and two multiplications.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tts._litellm import import_litellm, is_imported, packaged_price_table, table_cost
from tts.batching import base_backend
from tts.records import Completion, Usage, trusted


class Pricing:
    """Mixed into `AccountingBackend`, which sets these attributes in its constructor."""

    model: str | None
    prices: dict[str, tuple[float, float]]
    pricing: bool
    notes: set[str]
    _noted: set[str]
    _priced: dict[str, bool]
    _loading: asyncio.Future[Any] | None
    _table: dict[str, Any] | None

    def priced(self, completions: list[Completion]) -> list[Completion]:
        """The completions with their list price written into their usage (a fresh answer's own
        `cost_usd`, when its backend reported one, is kept)."""
        out = []
        for c in completions:
            u = c.usage
            if c.cached or (not u.calls and not u.total_tokens):
                out.append(c)
                continue
            cost = u.cost_usd or self._price(c.model, u.prompt_tokens, u.completion_tokens)
            usage = Usage.of(u.prompt_tokens, u.completion_tokens, u.calls, u.cached_calls, cost or 0.0,
                             u.calls if cost is None else 0, u.cached_tokens)
            out.append(trusted(Completion, {**c.__dict__, "usage": usage}))  # fields of a valid completion
        return out

    def _all_priced(self, out: list[Completion]) -> bool:
        """True when `prices=` covers these completions, so no price table is needed."""
        return self.model in self.prices or all(c.cached or c.model in self.prices for c in out)

    def _needs_table(self, out: list[Completion]) -> bool:
        return self._table is None and self.pricing and not is_imported() and not self._all_priced(out)

    def _prefetch_price_table(self) -> None:
        """Start reading the table (and this model's entry) in a thread as the first call goes out,
        so that its answer, and the first wave's, find the price ready instead of waiting for it."""
        if self._loading is None and self._table is None and self.pricing and not is_imported() \
                and self.model not in self.prices:
            self._loading = asyncio.ensure_future(asyncio.to_thread(_table_knowing, self.model))

    async def _load_price_table(self) -> None:
        """Read the table in a thread (it is a few MB of JSON), once, for all calls waiting on it."""
        if self._loading is None or self._loading.get_loop() is not asyncio.get_running_loop():
            self._loading = asyncio.ensure_future(asyncio.to_thread(_table_knowing, self.model))
        self._table = await asyncio.shield(self._loading)

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


def _table_knowing(model: str | None) -> Any:
    """The packaged table with `model`'s entry already looked up (the look-up scans the file)."""
    table = packaged_price_table()
    if model:
        table_cost(table, model, 0, 0)
    return table


def base_model(backend: Any) -> str | None:
    """The model name configured on the innermost backend of a stack, if it has one."""
    model = getattr(base_backend(backend), "model", None)
    return model if isinstance(model, str) else None

"""Generate, then select: N candidates from any strategy, one (or K) picked by any selector.

Self-consistency, best-of-N and RTV (docs/algorithms.md#generate-then-select) are one loop with another selector:
a majority vote, a scorer's top score, a tournament. The three kinds stay as presets
(`self-consistency`, `best-of-n`, `rtv`), each a default selector plus shortcut keywords that
configure it (`SelfConsistency(n=16, early_stop=1.0)` is `GenerateSelect(n=16,
selector=MajorityVote(early_stop=1.0))` under its own kind); the fields live on the selector once.

A selector that can stop early draws the candidates itself, in waves (`decide_drawing`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from tts.context import RunContext
from tts.records import Candidate, RunResult, Task
from tts.registry import SelectorField, StrategyField, build, register, roles_of
from tts.selectors.annotate import TopScore
from tts.selectors.selection import Selection, decide_drawing
from tts.selectors.vote import MajorityVote
from tts.strategies.base import Strategy
from tts.strategies.single import SingleSample


def as_selector(value: Any) -> Any:
    """A selector from a spec, kind name or instance; a scorer becomes a top-score selector."""
    if value is None or isinstance(value, dict | str):
        return value
    if "selector" not in roles_of(value) and "scorer" in roles_of(value):
        return TopScore(scorer=value)
    return value


@register
class GenerateSelect(Strategy):
    """`n` candidates from `generator`, then `selector` picks `select_k` (best first)."""

    kind: Literal["generate-select"] = "generate-select"
    n: int = Field(8, ge=1)
    """Candidates to draw (at most, when the selector stops early)."""
    generator: StrategyField = Field(default_factory=SingleSample)
    """What produces each candidate; any strategy."""
    selector: SelectorField = Field(default_factory=MajorityVote)
    """What picks among them; any selector (a scorer: its top score)."""
    select_k: int = Field(1, ge=1)
    """Candidates to return (`chosen`, best first); the answer is the first one's (a vote's winner)."""

    shortcuts: ClassVar[tuple[str, ...]] = ()
    """Keywords a preset accepts and hands to its selector (kept out of the fields: no twins)."""
    select_context: ClassVar[str | None] = "select"
    """The context the selector's calls go under (None: the strategy's own); a selector that
    names its own (`names_its_context`: a vote, a scorer's top score) gets the strategy's."""

    @model_validator(mode="before")
    @classmethod
    def _fold_shortcuts(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = {k: data.pop(k) for k in cls.shortcuts if k in data}
        selector = data.get("selector")
        if given:
            selector = cls.selector_from(given, selector)
        if selector is not None:
            data["selector"] = as_selector(selector)
        return data

    @classmethod
    def selector_from(cls, given: dict[str, Any], selector: Any) -> Any:
        """The selector a preset's shortcut keywords describe (presets override)."""
        return selector

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        async def draw(start: int, count: int) -> list[Candidate]:
            return await self.prepare(task, await self.generator.generate(task, ctx, count, start=start), ctx)

        selector = self.active_selector()
        own = self.select_context is None or getattr(selector, "names_its_context", False)
        sctx = ctx if own else ctx.child(self.select_context)
        selection = await decide_drawing(selector, task, draw, self.n, sctx, self.select_k)
        res = self.result(task, ctx, selection.chosen, selection.candidates, **self.metadata(selection))
        return res.model_copy(update={"answer": selection.final_answer})

    def active_selector(self) -> Any:
        """The selector as this run uses it (a preset may add its own prompt overrides)."""
        return self.selector

    async def prepare(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """What the selector needs of each candidate before it picks (default: nothing)."""
        return candidates

    def metadata(self, selection: Selection) -> dict[str, Any]:
        return dict(selection.metadata)

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """A run stopped early: the selector's own rule for it when it has one, else the majority."""
        pick = getattr(self.selector, "pick_partial", None)
        return pick(candidates, ctx) if pick is not None else super().pick_partial(candidates, ctx)


def preset_selector(kind: str, given: dict[str, Any], selector: Any) -> Any:
    """A `kind` selector from shortcut keywords `given`, on top of `selector` when it is one."""
    base = build("selector", selector).model_dump(exclude_unset=True) if selector is not None else {}
    return {**base, **given, "kind": kind}


__all__ = ["GenerateSelect", "as_selector", "preset_selector"]

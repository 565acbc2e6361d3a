"""Recursive Tournament Voting as a strategy (docs/algorithms.md): N candidates from a generator
(any strategy), each summarized (no model call by default), then RTV picks one (or K).

A preset of generate-then-select (`tts.strategies.generate_select`) whose selector is `RTV`;
its keywords `group_size`, `votes`, `tie_break`, `early_stop`, `wave`, `judge` and `summarizer`
are handed to that selector. Prompt overrides given to the strategy (`prompts`) apply to its judge.

At the defaults N=16, G=2, V=8 one task costs 16 sampling calls and V*(N-1) = 120 judge calls
in ceil(log2 16) = 4 tournament rounds."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from pydantic import Field

from tts.context import RunContext
from tts.records import Candidate, Task
from tts.registry import SelectorField, register
from tts.selectors.tournament import RTV
from tts.strategies.generate_select import GenerateSelect, preset_selector


@register
class TournamentVoting(GenerateSelect):
    kind: Literal["rtv"] = "rtv"
    n: int = Field(16, ge=1)
    """Candidates N."""
    selector: SelectorField = Field(default_factory=RTV)
    """The tournament (G, V, its judge, its summarizer, its early stop)."""

    shortcuts: ClassVar[tuple[str, ...]] = ("group_size", "votes", "tie_break", "early_stop", "wave", "judge",
                                            "summarizer")
    select_context: ClassVar[str | None] = None

    @classmethod
    def selector_from(cls, given: dict[str, Any], selector: Any) -> Any:
        return preset_selector("rtv", given, selector)

    def active_selector(self) -> Any:
        if not self.prompts or not isinstance(self.selector, RTV):
            return self.selector
        judge = self.selector.judge
        judge = judge.model_copy(update={"prompts": {**self.prompts, **judge.prompts}})
        return self.selector.model_copy(update={"judge": judge})

    async def prepare(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Each candidate with the summary the judges see, kept for a run stopped mid-tournament."""
        summarizer = getattr(self.selector, "summarizer", None)
        if summarizer is not None:
            sctx = ctx.child("summarize")
            candidates = list(await asyncio.gather(*(self._summarized(summarizer, task, c, sctx) for c in candidates)))
        ctx.keep("candidates", candidates)
        return candidates

    @staticmethod
    async def _summarized(summarizer: Any, task: Task, cand: Candidate, ctx: RunContext) -> Candidate:
        if cand.summary is not None:
            return cand
        return cand.model_copy(update={"summary": await summarizer.summarize(task, cand, ctx)})

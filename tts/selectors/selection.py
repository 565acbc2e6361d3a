"""What a selector decided: the chosen candidates (best first), the answer, and a record of how.

Every selector has `select`; a selector that knows more (a vote's tally, a tournament's bracket)
also has `decide`, returning a `Selection`; one that can stop early also has `decide_drawing`,
which draws candidates itself in waves (`draw(start, count)`) until more could not change the
outcome. `decide` below asks a selector for the richest of these it has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from tts.context import RunContext
from tts.records import Candidate, Record, Task

Draw = Callable[[int, int], Awaitable[list[Candidate]]]
"""`draw(start, count)`: candidates of sample indices start..start+count-1."""


class Selection(Record):
    chosen: list[Candidate]
    """Best first."""
    candidates: list[Candidate] = Field(default_factory=list)
    """Every candidate considered (with what the selector added: summaries, scores)."""
    answer: str | None = None
    """The decided answer (a vote's winner); None: the first chosen candidate's."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """For `RunResult.metadata`: the vote tally, the tournament, the early-stop record."""

    @property
    def final_answer(self) -> str | None:
        return self.answer if self.answer is not None else (self.chosen[0].answer if self.chosen else None)


async def decide(selector: Any, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> Selection:
    """The selector's `Selection` of `candidates` (from `decide` when it has one, else `select`)."""
    rich = getattr(selector, "decide", None)
    if rich is not None:
        return await rich(task, candidates, ctx, k)
    return Selection(chosen=list(await selector.select(task, candidates, ctx, k)), candidates=candidates)


async def decide_drawing(selector: Any, task: Task, draw: Draw, n: int, ctx: RunContext, k: int = 1) -> Selection:
    """Draw up to `n` candidates and select: in waves when the selector can stop early, else all at once."""
    drawing = getattr(selector, "decide_drawing", None)
    if drawing is not None:
        return await drawing(task, draw, n, ctx, k)
    return await decide(selector, task, await draw(0, n), ctx, k)

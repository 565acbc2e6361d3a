"""The strategy contract. A strategy is frozen configuration plus one async method, `solve`.

Strategies nest: any strategy can be the generator inside another, through `generate`, which
returns `n` candidates (by default: `n` independent runs of `solve`, each in its own replica so
their samples differ).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tts.answers import check_format, extract_answer
from tts.backend import Backend
from tts.context import RunContext, SamplingDefaults
from tts.records import Candidate, Completion, RunResult, Task


class Strategy(BaseModel):
    """Base class: subclass, add config fields, implement `solve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "strategy"
    answer_format: str = "auto"
    """How to pull the final answer out of a text: auto, last-number, boxed, answer-line, regex:..."""
    prompts: dict[str, str] = Field(default_factory=dict)
    """Per-instance prompt overrides: template name -> other template name or literal Jinja text."""

    @field_validator("answer_format")
    @classmethod
    def _valid_format(cls, v: str) -> str:
        return check_format(v)

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        raise NotImplementedError

    async def generate(self, task: Task, ctx: RunContext, n: int) -> list[Candidate]:
        """`n` candidates for `task`: the chosen candidate of `n` independent runs."""
        results = await asyncio.gather(*(self.solve(task, ctx.child(self.name, replica=i)) for i in range(n)))
        out: list[Candidate] = []
        for i, res in enumerate(results):
            if res.best is not None:
                out.append(res.best.model_copy(update={"id": f"{self.name}{i}", "usage": res.usage}))
        return out

    async def run(self, task: Task | str, backend: Backend, **kwargs: Any) -> RunResult:
        """Run on one task (a Task or a plain prompt). See `tts.run.run_task` for the options."""
        from tts.run import run_task

        return await run_task(self, task, backend, **kwargs)

    # -- helpers for subclasses ---------------------------------------------------------
    def candidate(self, comp: Completion, cid: str, **meta: Any) -> Candidate:
        if comp.logprobs:  # keep the confidence signal, not the logprobs themselves
            from tts.selectors.confidence import self_certainty

            certainty = self_certainty(comp.logprobs)
            if certainty is not None:
                meta["self_certainty"] = certainty
            # the path's probability, for perplexity-based selectors (rpc)
            meta["seq_logprob"] = sum(t.logprob for t in comp.logprobs)
            meta["seq_tokens"] = len(comp.logprobs)
        return Candidate(id=cid, text=comp.text, answer=extract_answer(comp.text, self.answer_format),
                         usage=comp.usage, metadata=meta)

    def result(self, task: Task, ctx: RunContext, chosen: list[Candidate], candidates: list[Candidate],
               **metadata: Any) -> RunResult:
        answer = chosen[0].answer if chosen else None
        return RunResult(task_id=task.id, strategy=self.name, answer=answer, chosen=chosen,
                         candidates=candidates, usage=ctx.usage, metadata=metadata)


__all__ = ["SamplingDefaults", "Strategy"]

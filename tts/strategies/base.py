"""The strategy contract. A strategy is frozen configuration plus one async method, `solve`.

Strategies nest: any strategy can be the generator inside another, through `generate`, which
returns `n` candidates (by default: `n` independent runs of `solve`, each in its own replica so
their samples differ).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import Field, field_validator

from tts.answers import check_format, extract_answer
from tts.context import RunContext, SamplingDefaults
from tts.records import Candidate, Completion, RunResult, Task, trusted
from tts.registry import Config
from tts.seam import Backend
from tts.selectors.certainty import self_certainty
from tts.tool_calls import json_key, render_tool_calls, tool_calls_key


class Strategy(Config):
    """Base class: subclass, give it a `kind` field (its one name), add config fields, implement
    `solve`; `@register` makes it reachable from spec files and `tts run`."""

    answer_format: str = "auto"
    """How to pull the final answer out of a text: auto, last-number, boxed, answer-line, regex:..."""
    prompts: dict[str, str] = Field(default_factory=dict)
    """Per-instance prompt overrides: template name -> other template name or literal Jinja text."""

    @field_validator("answer_format")
    @classmethod
    def _valid_format(cls, v: str) -> str:
        return check_format(v)

    @property
    def name(self) -> str:
        """The strategy's kind (its name in results, traces and context paths)."""
        return getattr(self, "kind", None) or type(self).__name__

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        raise NotImplementedError

    async def generate(self, task: Task, ctx: RunContext, n: int, start: int = 0) -> list[Candidate]:
        """`n` candidates for `task`: the chosen candidate of `n` independent runs, numbered from
        `start` (a later wave continues where the first left off)."""
        results = await asyncio.gather(*(self.solve(task, ctx.child(self.name, replica=i))
                                         for i in range(start, start + n)))
        out: list[Candidate] = []
        for i, res in enumerate(results, start=start):
            if res.best is not None:
                budgets = {k: res.metadata[k] for k in ("B_seq", "B_total") if k in res.metadata}
                out.append(res.best.model_copy(update={"id": f"{self.name}{i}", "usage": res.usage,
                                                       "metadata": {**res.best.metadata, **budgets}}))
        return out

    async def run(self, task: Task | str, backend: Backend, **kwargs: Any) -> RunResult:
        """Run on one task (a Task or a plain prompt). See `tts.run.run_task` for the options."""
        from tts.run import run_task

        return await run_task(self, task, backend, **kwargs)

    # -- helpers for subclasses ---------------------------------------------------------
    def candidate(self, comp: Completion, cid: str, **meta: Any) -> Candidate:
        if comp.logprobs:  # keep the confidence signal, not the logprobs themselves
            certainty = self_certainty(comp.logprobs)
            if certainty is not None:
                meta["self_certainty"] = certainty
            # the path's probability, for perplexity-based selectors (rpc)
            meta["seq_logprob"] = sum(t.logprob for t in comp.logprobs)
            meta["seq_tokens"] = len(comp.logprobs)
        if comp.finish_reason not in (None, "stop"):
            meta["finish_reason"] = comp.finish_reason
        if comp.tool_calls:  # vote on the call, show judges the call, keep the message as it came
            from tts.records import Message

            meta["structured"] = True
            return Candidate(id=cid, text=render_tool_calls(comp.text, comp.tool_calls),
                             answer=tool_calls_key(comp.tool_calls), usage=comp.usage, metadata=meta,
                             message=Message(role="assistant", content=comp.text or None, tool_calls=comp.tool_calls))
        structured = json_key(comp.text)
        if structured is not None:  # a JSON answer (a response format): compared in canonical form
            meta["structured"] = True
            return Candidate(id=cid, text=comp.text, answer=structured, usage=comp.usage, metadata=meta)
        answer = extract_answer(comp.text, self.answer_format)  # a plain text reply: built without validation
        return trusted(Candidate, {"id": cid, "text": comp.text, "answer": answer, "summary": None, "score": None,
                                   "usage": comp.usage, "metadata": meta, "message": None})

    # -- a run cut short ------------------------------------------------------------------
    def partial(self, task: Task, ctx: RunContext) -> RunResult:
        """The result of a run stopped early (a cap, a cancellation, a timeout): its real
        candidates so far (what the strategy kept with `ctx.keep("candidates", ...)`, else every
        answered call in a candidate role: samples, drafts, refinements, solutions; never a judge
        vote, a distill or a summary) and the answer `pick_partial` chooses among them."""
        cands = ctx.kept("candidates")
        if cands is None:
            cands = [self.candidate(c, f"partial{i}", path=r.path, role=r.role)
                     for i, (r, c) in enumerate(ctx.candidates_so_far())]
        chosen = self.pick_partial(list(cands), ctx) if cands else []
        return self.result(task, ctx, chosen[:1], list(cands), partial=True)

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """This strategy's rule over the candidates a stopped run has, best first. Default: the
        majority answer (self-consistency's rule); strategies with another rule override it."""
        from tts.selectors.vote import vote

        _, supporters = vote(candidates, ctx.rng("partial"))
        return supporters[:1] or candidates[:1]

    @staticmethod
    def round_of(cand: Candidate) -> int:
        """The refinement round a partial candidate came from (its `roundN` path segment), or 0."""
        found = re.findall(r"round(\d+)", str(cand.metadata.get("path", "")))
        return int(found[-1]) if found else int(cand.metadata.get("round", 0) or 0)

    def result(self, task: Task, ctx: RunContext, chosen: list[Candidate], candidates: list[Candidate],
               **metadata: Any) -> RunResult:
        answer = chosen[0].answer if chosen else None
        inner = [c.metadata["B_seq"] for c in candidates if "B_seq" in c.metadata]
        if inner and "B_seq" not in metadata:
            # nested PDR/SR runs: the whole run's tokens, and the longest inner chain (they ran in parallel)
            metadata = {**metadata, "B_total": ctx.usage.total_tokens, "B_seq": max(inner)}
        return RunResult(task_id=task.id, strategy=self.name, answer=answer, chosen=chosen,
                         candidates=candidates, usage=ctx.usage, paid=ctx.paid, metadata=metadata)


__all__ = ["SamplingDefaults", "Strategy"]

"""Sequential refinement (SR, docs/algorithms.md): PDR with one draft per round, where the workspace
is the previous attempt itself. R rounds = R refine calls (round 1 is the first draft), plus,
when asked, one feedback step before each refinement: an LLM critique (role `feedback`, sent to
the `judge` backend when one is configured) and/or a scorer (a verifier, a pointwise judge).

The refine prompt is the papers' improvement operator: check the previous attempt and keep its
answer unless an error is found (a verdict or critique, when configured, comes with it); the
task is restated last with its own answer instruction. A short-answer attempt is shown in short
form (its rationale and "Answer: x", one line) right before the verbatim task; a long one whole
(within kappa) under its own heading (`refine.j2`). The model keeps its own system prompt unless
`refine_system.j2` is overridden to render a system note.

`accept="likelier"` makes a refinement replace the attempt it refines only when the model itself
gave the new reply a higher mean token logprob (a lower perplexity) than that attempt: the
model's own confidence is the reason to change an answer. The calls and rounds are the papers';
what changes is which attempt stands, and so which one the next round refines and the run
returns."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.prompts import render
from tts.records import Candidate, Message, RunResult, Task
from tts.registry import ScorerField, register
from tts.selectors.rpc import path_probability
from tts.strategies.base import Strategy
from tts.strategies.workspace import answer_instruction, fit, last_user_text, with_context, with_note, with_turn
from tts.summarizers.short import RATIONALE_TOKENS, rationale, short_form, use_short_form


@register
class SequentialRefinement(Strategy):
    kind: Literal["sequential-refinement"] = "sequential-refinement"
    rounds: int = Field(3, ge=1)
    """Refine calls in all, the first draft included."""
    kappa: int = Field(1024, ge=16)
    """Bound, in tokens (ceil(chars / 4)), on the previous attempt (and on the feedback) shown to the model."""
    critique: bool = False
    """Before each refinement, ask a model to critique the previous attempt (one extra call per round)."""
    scorer: ScorerField = None
    """Scores each attempt; the score is shown as feedback and, with `stop_at`, can end the run early."""
    stop_at: float | None = None
    """Stop refining once the scorer gives an attempt at least this score."""
    show: Literal["auto", "short", "full"] = "auto"
    """What the refine call reads of the previous attempt: `short` (rationale and answer), `full`
    (its text), `auto` (short for a short answer in a short reply)."""
    rationale_tokens: int = Field(RATIONALE_TOKENS, ge=0)
    """Bound on the rationale in the short form (and never more than kappa)."""
    accept: Literal["last", "likelier"] = "last"
    """Whether a refinement replaces the attempt it refines: `last` (the papers'), always;
    `likelier`, only when the model gave it a higher mean token logprob than that attempt (the
    calls ask for logprobs), else the attempt stands and is refined again. A reply without
    logprobs is accepted, and the result's metadata says so."""
    short_as: Literal["note", "message", "turn"] = "turn"
    """Where a short previous attempt goes: `note`, a system message before the verbatim task;
    `message`, one user message (the attempt, then the
    task); `turn`, the task, the attempt as the model's own earlier reply, then the request to
    check it and the task again."""

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        attempts: list[Candidate] = []
        standing: int | None = None  # the attempt that stands: the next round refines it
        # top_logprobs too: llama.cpp's server returns no logprobs without it
        params = {"logprobs": True, "top_logprobs": 1} if self.accept == "likelier" else {}
        for r in range(1, self.rounds + 1):
            rctx = ctx.child(f"round{r}")
            if standing is None:
                messages = task.as_messages()
            else:
                previous = attempts[standing]
                if self.scorer is not None and previous.score is None:
                    previous = attempts[standing] = await self._scored(task, rctx, previous)
                    if self.stop_at is not None and previous.score >= self.stop_at:
                        break  # accepted: no more refinement
                messages = await self._refine_messages(task, rctx, previous)
            comp = await rctx.complete(messages, role="refine" if standing is not None else "draft", **params)
            attempts.append(self.candidate(comp, f"r{r}", round=r))
            if standing is None or self._replaces(attempts[-1], attempts[standing]):
                standing = len(attempts) - 1
        if self.scorer is not None and attempts[standing].score is None:
            attempts[standing] = await self._scored(task, ctx.child("final"), attempts[standing])
        total = ctx.usage.total_tokens
        return self.result(task, ctx, [attempts[standing]], attempts, B_total=total, B_seq=total,
                           rounds=len(attempts), **self._accept_metadata(attempts, attempts[standing]))

    async def _refine_messages(self, task: Task, ctx: RunContext, previous: Candidate) -> list[Message]:
        """The refine call's messages: the previous attempt (short or whole), its feedback, the task."""
        feedback = await self._feedback(task, ctx, previous)
        short = use_short_form([previous], self.show)
        bound = min(self.rationale_tokens, self.kappa)
        turn = short and self.short_as == "turn"
        variables = dict(task=last_user_text(task), short=short, place=self.short_as if short else "full",
                         feedback=fit(feedback, self.kappa),
                         previous=fit(short_form(previous, bound) if short else previous.text, self.kappa),
                         previous_answer=previous.answer,
                         rationale=rationale(previous.text, previous.answer, bound),
                         answer_instruction=answer_instruction(self.answer_format))
        content = render("refine.j2", self.prompts, **variables)
        context = with_turn(task, variables["previous"], content) if turn else with_context(task, content)
        return with_note(context, render("refine_system.j2", self.prompts, **variables))

    def _replaces(self, new: Candidate, old: Candidate) -> bool:
        """Whether refinement `new` replaces attempt `old` (it does when there are no logprobs to tell)."""
        return self.accept == "last" or likelier(new, old) is not False

    def _accept_metadata(self, attempts: list[Candidate], final: Candidate) -> dict:
        if self.accept == "last":
            return {}
        out = {"accepted_round": self.round_of(final)}
        if len(attempts) > 1 and any(path_probability(a) is None for a in attempts):
            out["accept_note"] = ("the backend returned no logprobs for a refinement, so it was accepted "
                                  "unchecked (as accept='last')")
        return out

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Stopped early: the attempt standing after the last round that came back."""
        standing: Candidate | None = None
        for cand in sorted(candidates, key=self.round_of):
            if standing is None or self._replaces(cand, standing):
                standing = cand
        return [standing] if standing is not None else []

    async def _scored(self, task: Task, ctx: RunContext, cand: Candidate) -> Candidate:
        score = (await self.scorer.score(task, [cand], ctx.child("score")))[0]
        return cand.model_copy(update={"score": float(score)})

    async def _feedback(self, task: Task, ctx: RunContext, previous: Candidate) -> str:
        """Feedback text on `previous` (its score, a critique), empty when none is configured."""
        parts: list[str] = []
        if previous.score is not None:
            parts.append(_verdict(previous.score))
        if self.critique:
            prompt = render("refine_critique.j2", self.prompts, task=last_user_text(task),
                            attempt=fit(previous.text, self.kappa))
            comp = await ctx.complete([{"role": "user", "content": prompt}], role="feedback", use="judge")
            parts.append(comp.text.strip())
        return "\n\n".join(parts)


def likelier(new: Candidate, old: Candidate) -> bool | None:
    """Whether the model gave `new` a strictly higher mean token logprob than `old` (a lower
    perplexity; a tie keeps `old`); None when either has no logprobs."""
    a, b = path_probability(new), path_probability(old)  # exp(mean token logprob): the same order
    return None if a is None or b is None else a > b


def _verdict(score: float) -> str:
    """A scorer's verdict in words; 0 and 1 are a verifier's reject and accept."""
    if score <= 0:
        return "An automatic check rejected the previous answer: it is wrong."
    if score == 1:
        return "An automatic check accepted the previous answer."
    return f"An automatic check scored the previous attempt {score:g} (higher is better)."

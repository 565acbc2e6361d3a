"""Parallel-Distill-Refine (docs/algorithms.md#parallel-distill-refine-pdr).

    workspace = ""                                  # empty in round 1
    for r in 1..R:
        drafts = M_r drafts in parallel, each conditioned on (task, workspace)
        workspace = distill(task, drafts)           # <= kappa tokens, rebuilt each round
    return the single draft of the last round       # M_R = 1

Distill operators: `summary` (one model call writes a global summary), `top-k` (k drafts chosen
by a selector: majority support by default, any selector such as RTV select-K), `random-k`
(each next draft gets its own random k drafts).

What the next round reads (`show`): for short answers (the default `auto` when every draft has
an answer of at most 40 characters in a reply of at most 256 tokens) the distinct answers with
their support ("14 (3 of 4 attempts); 13 (1 of 4 attempts)") and the best-supported answer's
shortest rationale, within kappa. Where it goes (`short_as`): for top-k and random-k, as a turn
of the chat (the task, that draft in short form as the model's own earlier reply, then the
support, "Keep this answer unless it is wrong." and the task again; `split` moves the support
into a system note, fewer tokens and measured a little less accurate); for the summary, the
summary in a system note before the verbatim task (`pdr_draft_system.j2`). The summary call
sees each draft in that short form too. Otherwise (`full`) the drafts' texts, each an equal
share of kappa, then the task restated last. The task's own answer instruction is the
only one. Budgets reported in `RunResult.metadata`:
`B_total` (every token of the run) and `B_seq` (the longest chain of drafts and distills that led
to the final draft: a latency proxy).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from tts.context import RunContext
from tts.errors import ConfigError
from tts.prompts import render
from tts.records import Candidate, RunResult, Task
from tts.registry import SelectorField, register
from tts.selectors.vote import rank_by_answer
from tts.strategies.base import Strategy
from tts.strategies.workspace import (
    answer_instruction,
    answer_support,
    approx_tokens,
    fit,
    fit_answers,
    fit_drafts,
    last_user_text,
    with_context,
    with_note,
    with_turn,
)
from tts.summarizers.short import RATIONALE_TOKENS, short_form, use_short_form


class _Workspace(BaseModel):
    """One distilled workspace and where it came from (for B_seq)."""

    text: str
    sources: list[int]
    """Indices of the previous round's drafts it was built from."""
    tokens_spent: int = 0
    """Tokens of the model call that built it (the summary call), 0 for a no-model operator."""
    short: bool = False
    """Built from drafts in short form (the drafts' templates then put it where `short_as` says)."""
    said: str = ""
    """With `short_as="turn"` or `"split"`: the earlier reply the next drafts read as their own (the best-supported
    draft in short form, or the summary); `text` is then what the user says about it."""


def extend_chains(chains: list[int], drafts: list[Candidate], workspaces: list[_Workspace]) -> list[int]:
    """B_seq bookkeeping (docs/algorithms.md#parallel-distill-refine-pdr): the longest chain ending in each new draft
    is its own tokens, plus its workspace's (the distill call that built it), plus the longest
    chain among the previous round's drafts that workspace was built from. Draft i reads
    workspace i mod len(workspaces)."""
    out = []
    for i, d in enumerate(drafts):
        ws = workspaces[i % len(workspaces)]
        out.append(d.usage.total_tokens + ws.tokens_spent + max((chains[s] for s in ws.sources), default=0))
    return out


@register
class ParallelDistillRefine(Strategy):
    kind: Literal["pdr"] = "pdr"
    drafts: int | list[int] = 8
    """Drafts per round: one number M (rounds 1..R-1 draw M, the last round 1), or the list M_1..M_R."""
    rounds: int | None = Field(None, ge=1)
    """Rounds R (default 3 when `drafts` is a number; the list's length when it is a list)."""
    distill: Literal["summary", "top-k", "random-k"] = "summary"
    kappa: int = Field(1024, ge=16)
    """Bound on the workspace, in tokens (ceil(chars / 4))."""
    k: int = Field(2, ge=1)
    """Drafts kept in the workspace by `top-k` and `random-k`."""
    selector: SelectorField = None
    """Chooses the top-k drafts (e.g. RTV select-K); default: the k best-supported distinct answers."""
    show: Literal["auto", "short", "full"] = "auto"
    """What the next round reads of the drafts: `short` (answers with support, one rationale),
    `full` (their texts), `auto` (short when every draft has a short answer and is short)."""
    rationale_tokens: int = Field(RATIONALE_TOKENS, ge=0)
    """Bound on each rationale in the short form (the workspace as a whole stays within kappa)."""
    short_as: Literal["auto", "note", "message", "turn", "split"] = "auto"
    """Where a short workspace goes: `turn`, the task, the best-supported draft in short form (or
    the summary) as the model's own earlier reply, then the support and the task again; `split`,
    the same turn with the support moved into a system note (a few tokens cheaper: on a model
    with a default system prompt the note replaces it; the same as `turn` for summary); `note`, a
    system message before the verbatim task; `message`, one user message (the workspace, then
    the task). `auto`: `turn` for top-k and random-k, `note` for summary (what measured best for
    each on SmolLM2-135M: benchmarks/quality.py)."""

    @model_validator(mode="after")
    def _check_schedule(self) -> ParallelDistillRefine:
        if isinstance(self.drafts, list):
            if not self.drafts or any(m < 1 for m in self.drafts):
                raise ConfigError(f"pdr: field 'drafts': every round needs at least 1 draft, got {self.drafts}")
            if self.drafts[-1] != 1:
                raise ConfigError(f"pdr: field 'drafts': the last round has one draft (end the list with 1), "
                                  f"got {self.drafts}")
            if self.rounds is not None and self.rounds != len(self.drafts):
                raise ConfigError(f"pdr: field 'rounds': {self.rounds} does not match the {len(self.drafts)} "
                                  f"entries of 'drafts'")
        elif self.drafts < 1:
            raise ConfigError(f"pdr: field 'drafts': must be at least 1, got {self.drafts}")
        if self.selector is not None and self.distill != "top-k":
            raise ConfigError(f"pdr: field 'selector' is used by distill 'top-k' only, not {self.distill!r}")
        return self

    @property
    def placement(self) -> str:
        """`short_as` with `auto` resolved."""
        if self.short_as != "auto":
            return self.short_as
        return "note" if self.distill == "summary" else "turn"

    @property
    def as_turn(self) -> bool:
        """Whether a short workspace is read as the model's own earlier reply (`turn`, `split`)."""
        return self.placement in ("turn", "split")

    @property
    def schedule(self) -> list[int]:
        """M_1..M_R."""
        if isinstance(self.drafts, list):
            return list(self.drafts)
        rounds = self.rounds or 3
        return [self.drafts] * (rounds - 1) + [1]

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        schedule = self.schedule
        workspaces = [_Workspace(text="", sources=[])]
        chains: list[int] = []  # per draft of the previous round: B_seq of the chain ending in it
        all_drafts: list[Candidate] = []
        ws_tokens: list[int] = []
        drafts: list[Candidate] = []
        for r, m in enumerate(schedule, 1):
            rctx = ctx.child(f"round{r}")
            drafts = list(await asyncio.gather(*(
                self._draft(task, rctx, i, r, workspaces[i % len(workspaces)]) for i in range(m))))
            all_drafts.extend(drafts)
            chains = extend_chains(chains, drafts, workspaces)
            if r < len(schedule):
                workspaces = await self._distill(task, rctx, drafts, schedule[r])
                ws_tokens.append(max(approx_tokens(w.text) for w in workspaces))
        final = drafts[0]
        total = ctx.usage.total_tokens
        return self.result(task, ctx, [final], all_drafts, B_total=total, B_seq=chains[0], rounds=len(schedule),
                           drafts=schedule, distill=self.distill, kappa=self.kappa, workspace_tokens=ws_tokens)

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Stopped early: the best draft so far, i.e. among the drafts of the latest round reached,
        the best-supported answer (top-k's default rule)."""
        latest = max(self.round_of(c) for c in candidates)
        return rank_by_answer([c for c in candidates if self.round_of(c) == latest], ctx.rng("partial"))[:1]

    async def _draft(self, task: Task, ctx: RunContext, i: int, r: int, workspace: _Workspace) -> Candidate:
        if workspace.text:
            turn = workspace.short and self.as_turn
            place = self.placement if workspace.short else "full"
            variables = dict(task=last_user_text(task), workspace=workspace.text, short=workspace.short, place=place,
                             distill=self.distill, answer_instruction=answer_instruction(self.answer_format))
            content = render("pdr_draft.j2", self.prompts, **variables)
            messages = with_note(with_turn(task, workspace.said, content) if turn else with_context(task, content),
                                 render("pdr_draft_system.j2", self.prompts, **variables))
        else:
            messages = task.as_messages()  # round 1: the plain task, as a single sample sees it
        comp = await ctx.complete(messages, role="draft", sample_index=i)
        return self.candidate(comp, f"r{r}d{i}", round=r)

    async def _distill(self, task: Task, ctx: RunContext, drafts: list[Candidate], next_m: int) -> list[_Workspace]:
        short = use_short_form(drafts, self.show)
        if self.distill == "summary":
            texts = [short_form(d, self.rationale_tokens) if short else d.text for d in drafts]
            answers = "; ".join(f"{a['answer']} ({a['support']} of {len(drafts)} attempts)"
                                for a in answer_support(drafts)) if short else ""
            prompt = render("pdr_distill.j2", self.prompts, task=last_user_text(task), drafts=texts, answers=answers,
                            max_words=max(10, self.kappa * 3 // 4), short=short)
            comp = await ctx.complete([{"role": "user", "content": prompt}], role="distill", max_tokens=self.kappa)
            summary = fit(comp.text, self.kappa)
            return [_Workspace(text=summary, sources=list(range(len(drafts))), tokens_spent=comp.usage.total_tokens,
                               short=short, said=summary if short and self.as_turn else "")]
        if self.distill == "top-k":
            k = min(self.k, len(drafts))
            if self.selector is not None:
                chosen = await self.selector.select(task, drafts, ctx.child("select"), k)
            else:
                chosen = rank_by_answer(drafts, ctx.rng("top-k"))[:k]
            index = {d.id: i for i, d in enumerate(drafts)}
            indices = [index[c.id] for c in chosen[:k]]
            # support is counted over the whole round: "14 (3 of 4 attempts)"
            return [self._pack(indices, drafts, short, support_in=drafts)]
        # random-k: each next draft bootstraps its own k drafts (and sees support among them only)
        k = min(self.k, len(drafts))
        return [self._pack(sorted(ctx.rng(f"random-k/{j}").sample(range(len(drafts)), k)), drafts, short)
                for j in range(next_m)]

    def _pack(self, indices: list[int], drafts: list[Candidate], short: bool,
              support_in: list[Candidate] | None = None) -> _Workspace:
        """The workspace of drafts[indices]: in short form (support counted in `support_in`,
        default the chosen drafts themselves) or their texts."""
        chosen = [drafts[i] for i in indices]
        pool = support_in or chosen
        answers = answer_support(pool, chosen)
        said = ""
        if short and self.as_turn and answers:
            # the earlier reply: the best-supported answer with its shortest rationale; the support follows
            # (split: in a system note before it)
            top = [c for c in pool if c.answer == answers[0]["answer"]]
            forms = [short_form(c, self.rationale_tokens) for c in top]
            said = fit(min(forms, key=lambda f: (f.startswith("Answer: "), len(f))), self.kappa // 2)
        if short:
            # the reply and the support share kappa (1: the break between them, counted rounding up)
            room = self.kappa - approx_tokens(said) - 1 if said else self.kappa
            text = fit_answers(pool, chosen, room, 0 if said else self.rationale_tokens,
                               lambda **v: render("pdr_answers.j2", self.prompts, **v))
        else:
            text = fit_drafts([c.text for c in chosen], self.kappa,
                              lambda texts: render("pdr_workspace.j2", self.prompts, drafts=texts))
        return _Workspace(text=text, sources=indices, short=short, said=said)

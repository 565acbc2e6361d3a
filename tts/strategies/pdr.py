"""Parallel-Distill-Refine (algorithms.md §2).

    workspace = ""                                  # empty in round 1
    for r in 1..R:
        drafts = M_r drafts in parallel, each conditioned on (task, workspace)
        workspace = distill(task, drafts)           # <= kappa tokens, rebuilt each round
    return the single draft of the last round       # M_R = 1

Distill operators: `summary` (one model call writes a global summary), `top-k` (k drafts chosen
by a selector: majority support by default, any selector such as RTV select-K), `random-k`
(each next draft gets its own random k drafts). Budgets reported in `RunResult.metadata`:
`B_total` (every token of the run) and `B_seq` (the longest chain of drafts and distills that led
to the final draft: a latency proxy).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from tts.context import RunContext
from tts.errors import ConfigError
from tts.prompts import render
from tts.records import Candidate, RunResult, Task
from tts.selectors.registry import SelectorField
from tts.selectors.vote import rank_by_answer
from tts.spec import register
from tts.strategies.base import Strategy
from tts.strategies.workspace import approx_tokens, fit, fit_drafts, last_user_text, with_context


class _Workspace(BaseModel):
    """One distilled workspace and where it came from (for B_seq)."""

    text: str
    sources: list[int]
    """Indices of the previous round's drafts it was built from."""
    tokens_spent: int = 0
    """Tokens of the model call that built it (the summary call), 0 for a no-model operator."""


@register
class ParallelDistillRefine(Strategy):
    name: ClassVar[str] = "pdr"
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
                self._draft(task, rctx, i, r, workspaces[i % len(workspaces)].text) for i in range(m))))
            all_drafts.extend(drafts)
            new_chains = []
            for i, d in enumerate(drafts):
                ws = workspaces[i % len(workspaces)]
                before = max((chains[s] for s in ws.sources), default=0)
                new_chains.append(d.usage.total_tokens + ws.tokens_spent + before)
            chains = new_chains
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

    async def _draft(self, task: Task, ctx: RunContext, i: int, r: int, workspace: str) -> Candidate:
        if workspace:
            content = render("pdr_draft.j2", self.prompts, task=last_user_text(task), workspace=workspace)
            messages = with_context(task, content)
        else:
            messages = task.as_messages()  # round 1: the plain task, as a single sample sees it
        comp = await ctx.complete(messages, role="draft", sample_index=i)
        return self.candidate(comp, f"r{r}d{i}", round=r)

    async def _distill(self, task: Task, ctx: RunContext, drafts: list[Candidate], next_m: int) -> list[_Workspace]:
        if self.distill == "summary":
            prompt = render("pdr_distill.j2", self.prompts, task=last_user_text(task), drafts=[d.text for d in drafts],
                            max_words=max(10, self.kappa * 3 // 4))
            comp = await ctx.complete([{"role": "user", "content": prompt}], role="distill", max_tokens=self.kappa)
            return [_Workspace(text=fit(comp.text, self.kappa), sources=list(range(len(drafts))),
                               tokens_spent=comp.usage.total_tokens)]
        if self.distill == "top-k":
            k = min(self.k, len(drafts))
            if self.selector is not None:
                chosen = await self.selector.select(task, drafts, ctx.child("select"), k)
            else:
                chosen = rank_by_answer(drafts, ctx.rng("top-k"))[:k]
            index = {d.id: i for i, d in enumerate(drafts)}
            return [self._pack([index[c.id] for c in chosen[:k]], drafts)]
        # random-k: each next draft bootstraps its own k drafts
        k = min(self.k, len(drafts))
        return [self._pack(sorted(ctx.rng(f"random-k/{j}").sample(range(len(drafts)), k)), drafts)
                for j in range(next_m)]

    def _pack(self, indices: list[int], drafts: list[Candidate]) -> _Workspace:
        text = fit_drafts([drafts[i].text for i in indices], self.kappa,
                          lambda texts: render("pdr_workspace.j2", self.prompts, drafts=texts))
        return _Workspace(text=text, sources=indices)

"""RTV over rollouts and agentic PDR (docs/algorithms.md#agentic-pdr), over one instance or many.

    S0 = [summarize(rollout(instance)) for _ in N]                 # round 0: no prior context
    ctx = RTV(S0, select K)                                        # select-K
    S1 = [summarize(rollout(instance, prior=ctx)) for _ in N]     # fresh environments, K summaries shown
    ...                                                            # `rounds` rounds in all
    return RTV(S_last, select 1).patch

`rounds=1` is plain RTV over N rollouts. Each rollout is summarized as soon as it finishes; with a
`RunDir`, every rollout, summary and selection is a file and a rerun skips what exists. A shared
`limiter` (semaphore) bounds rollouts in flight across instances. A rollout that ended in an error
(`Trajectory.metadata["error"]`) is no candidate: when a round has none left, no judge call is made
and the instance ends with `SWEResult.error` (its rollouts' errors counted in `rollout_errors`).

From agent code:  `res = await AgenticPDR(rollouts=8).run_instance(instance, runner, backend)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from tts.context import RunContext, SamplingDefaults
from tts.errors import ConfigError
from tts.records import Candidate, Task, Trajectory, TrajectorySummary
from tts.registry import Component, SummarizerField
from tts.seam import Backend
from tts.selectors.judge import ListwiseJudge
from tts.selectors.tournament import RTV
from tts.swe.batch import rollout_bars, run_instances
from tts.swe.executor import on_executor
from tts.swe.instance import SWEInstance
from tts.swe.results import (
    Event,
    RoundRecord,
    SWEResult,
    all_failed,
    candidate_of,
    count_errors,
    error_lines,
    rollout_id,
    usable,
)
from tts.swe.rundir import RunDir
from tts.swe.runners import AgentRunner
from tts.swe.summarize import LLMTrajectorySummary, RuleTrajectorySummary

__all__ = ["AgenticPDR", "Event", "RoundRecord", "SWEResult", "all_failed", "candidate_of", "error_lines",
           "rollout_bars", "rollout_id", "run_instances", "summarize_rollout", "swe_rtv", "usable"]


def swe_rtv(group_size: int = 2, votes: int = 8, summary_tokens: int = 1500) -> RTV:
    """RTV with the patch-review judge prompt and room for a patch in each shown summary."""
    judge = ListwiseJudge(prompts={"judge_listwise.j2": "swe_judge.j2"}, summary_tokens=summary_tokens)
    return RTV(group_size=group_size, votes=votes, judge=judge)


class AgenticPDR(Component):
    """Configuration only; per-run state is in the arguments of `run_instance`. Not a registered component
    (it runs agents, not chat tasks): built in code or by `tts swe`."""

    rollouts: int = Field(16, ge=1)
    """N rollouts per round."""
    rounds: int = Field(2, ge=1)
    """T rounds; 1 means RTV over N independent rollouts."""
    select_k: int = Field(4, ge=1)
    """K summaries carried into the next round as prior experience."""
    selector: Any = Field(default_factory=swe_rtv)
    """Anything with `select(task, candidates, ctx, k)`; RTV by default."""
    summarizer: SummarizerField = Field(default_factory=LLMTrajectorySummary)
    drop_empty_patches: bool = True
    """Leave rollouts with no patch out of the final selection (when any other has one)."""

    async def run_instance(self, instance: SWEInstance, runner: AgentRunner, backend: Backend | None = None, *,
                           ctx: RunContext | None = None, rundir: RunDir | str | None = None,
                           limiter: asyncio.Semaphore | None = None, seed: int = 0,
                           backends: dict[str, Backend] | None = None, on_event: Event | None = None,
                           executor: Any = None) -> SWEResult:
        if ctx is None:
            if backend is None and not backends:
                raise ConfigError("run_instance needs a backend (judge and summaries) or a RunContext")
            ctx = RunContext(backend, backends=backends, seed=seed, path=f"swe/{instance.instance_id}",
                             defaults=SamplingDefaults(temperature=0.7, max_tokens=2048))
        rd = RunDir(rundir) if isinstance(rundir, str) else rundir
        limiter = limiter or asyncio.Semaphore(self.rollouts)
        runner = on_executor(runner, executor)  # where rollouts run (tts.swe.executor); the rest stays here
        task = instance.as_task()
        started = time.perf_counter()
        prior: list[TrajectorySummary] = []
        rounds: list[RoundRecord] = []
        judge_calls = summary_calls = 0
        chosen: Candidate | None = None
        agent_cost = 0.0
        errors: dict[str, int] = {}
        for r in range(self.rounds):
            rctx = ctx.child(f"round{r}")
            outs = await asyncio.gather(*(
                self._one(instance, task, runner, prior, r, k, rctx, rd, limiter, on_event)
                for k in range(self.rollouts)))
            cands = [c for c, _ in outs]
            agent_cost += sum(float(c.metadata.get("cost_usd") or 0.0) for c in cands)
            summary_calls += sum(n for _, n in outs)
            count_errors(cands, errors)
            # A rollout that ended in an error is no candidate; a round with none left costs no judge call.
            pool = usable(cands)
            last = r == self.rounds - 1
            if not pool:
                rounds.append(RoundRecord(index=r, rollout_ids=[c.id for c in cands],
                                          prior_ids=[s.source_id for s in prior]))
                chosen = None
                break
            k = 1 if last else min(self.select_k, len(pool))
            if last and self.drop_empty_patches and any(c.text.strip() for c in pool):
                pool = [c for c in pool if c.text.strip()]
            picked, calls = await self.select_round(task, pool, rctx, k, rd=rd, iid=instance.instance_id, r=r)
            judge_calls += calls
            rounds.append(RoundRecord(index=r, rollout_ids=[c.id for c in cands],
                                      prior_ids=[s.source_id for s in prior], selected_ids=[c.id for c in picked]))
            prior = [c.summary for c in picked if c.summary is not None]
            chosen = picked[0] if picked else None
        res = SWEResult(instance_id=instance.instance_id, patch=(chosen.text or None) if chosen else None,
                        chosen_id=chosen.id if chosen else None, rounds=rounds, usage=ctx.usage,
                        judge_calls=judge_calls, summary_calls=summary_calls,
                        rollouts=sum(len(rr.rollout_ids) for rr in rounds),
                        agent_cost_usd=agent_cost, rollout_errors=errors, failed_rollouts=sum(errors.values()),
                        error=all_failed(rounds, errors), wall_s=time.perf_counter() - started)
        if rd is not None:
            rd.save(rd.result(instance.instance_id), res)
        if on_event is not None:
            on_event("instance", instance.instance_id)
        return res

    async def _one(self, instance: SWEInstance, task: Task, runner: AgentRunner, prior: Sequence[TrajectorySummary],
                   r: int, k: int, ctx: RunContext, rd: RunDir | None, limiter: asyncio.Semaphore,
                   on_event: Event | None) -> tuple[Candidate, int]:
        """Rollout k of round r, then its summary (each loaded instead when the run dir has it).
        Returns the candidate and the number of summary calls made."""
        traj = await self.rollout(instance, runner, prior, r, k, rd=rd, limiter=limiter, on_event=on_event)
        summary, calls = await self.summary(task, traj, r, k, ctx, rd=rd)
        return candidate_of(traj, summary, r), calls

    async def rollout(self, instance: SWEInstance, runner: AgentRunner, prior: Sequence[TrajectorySummary], r: int,
                      k: int, *, rd: RunDir | None = None, limiter: asyncio.Semaphore | None = None,
                      on_event: Event | None = None) -> Trajectory:
        iid = instance.instance_id
        traj = rd.load(rd.rollout(iid, r, k), Trajectory) if rd else None
        if traj is None:
            async with limiter or asyncio.Semaphore(1):
                traj = await runner.run(instance, prior, rollout_id=rollout_id(iid, r, k))
            if rd:
                rd.save(rd.rollout(iid, r, k), traj)
        if on_event is not None:
            on_event("rollout", iid)
        return traj

    async def summary(self, task: Task, traj: Trajectory, r: int, k: int, ctx: RunContext | None, *,
                      rd: RunDir | None = None) -> tuple[TrajectorySummary, int]:
        """The summary of rollout k of round r (loaded when the run dir has it) and the model calls it took.
        `ctx` may be None when the summarizer needs no model (`RuleTrajectorySummary`)."""
        summary = rd.load(rd.summary(task.id, r, k), TrajectorySummary) if rd else None
        if summary is not None:
            return summary, 0
        calls = 0
        if isinstance(self.summarizer, RuleTrajectorySummary) or (traj.metadata.get("error") and not traj.steps):
            rule = self.summarizer if isinstance(self.summarizer, RuleTrajectorySummary) else RuleTrajectorySummary()
            summary = rule.summarize_trajectory(traj).model_copy(update={"source_id": traj.id})
        elif ctx is None:
            raise ConfigError(f"the {getattr(self.summarizer, 'kind', type(self.summarizer).__name__)} summarizer "
                              f"needs a model: give a backend, or use the rule summarizer")
        else:
            sctx = ctx.child("summarize", replica=f"{r}.{k}")
            summary = await summarize_rollout(self.summarizer, task, traj, sctx)
            calls = sum(1 for rec in sctx.records if rec.role == "summarize")
        if rd:
            rd.save(rd.summary(task.id, r, k), summary)
        return summary, calls

    @staticmethod
    def saved_prior(rd: RunDir, iid: str, r: int) -> list[TrajectorySummary]:
        """The summaries selected in round r-1, from the run dir (for a step-by-step run)."""
        sel = rd.load_json(rd.selection(iid, r - 1)) or {}
        out = []
        for cid in sel.get("chosen", []):
            k = int(cid.rsplit("-", 1)[1])
            s = rd.load(rd.summary(iid, r - 1, k), TrajectorySummary)
            if s is not None:
                out.append(s)
        return out

    async def select_round(self, task: Task, cands: list[Candidate], ctx: RunContext, k: int, *,
                           rd: RunDir | None = None, iid: str | None = None, r: int = 0) -> tuple[list[Candidate], int]:
        """One selection round: `k` of `cands` (all of them when there are no more), and the number of judge
        calls made. With a run dir, the selection of round `r` of instance `iid` is a file: loaded when saved
        with the same `k`, else saved."""
        iid = iid or task.id
        if len(cands) <= k:
            return list(cands), 0
        saved = rd.load_json(rd.selection(iid, r)) if rd else None
        if saved is not None and saved.get("k") == k:
            by_id = {c.id: c for c in cands}
            if all(i in by_id for i in saved["chosen"]):
                return [by_id[i] for i in saved["chosen"]], 0
        digest: dict[str, Any] = {}
        if hasattr(self.selector, "tournament"):
            t = await self.selector.tournament(task, cands, ctx, k)
            picked, calls, digest = list(t.winners), t.judge_calls, t.summary()
        else:
            sctx = ctx.child("select")
            picked = list(await self.selector.select(task, cands, sctx, k))
            calls = sum(1 for rec in sctx.records if rec.role == "judge")
        if rd:
            rd.save_json(rd.selection(iid, r), {"k": k, "chosen": [c.id for c in picked], "tournament": digest})
        return picked, calls


async def summarize_rollout(summarizer: Any, task: Task, traj: Trajectory, ctx: RunContext) -> TrajectorySummary:
    """Trajectory-aware summarizers get the trajectory; any other `Summarizer` gets a candidate
    carrying it (text: the patch)."""
    if hasattr(summarizer, "summarize_trajectory"):
        out = summarizer.summarize_trajectory(task, traj, ctx) if _takes_ctx(summarizer) \
            else summarizer.summarize_trajectory(traj)
        if asyncio.iscoroutine(out):
            out = await out
    else:
        cand = Candidate(id=traj.id, text=traj.patch or "", metadata={"trajectory": traj.model_dump()})
        out = await summarizer.summarize(task, cand, ctx)
    return out.model_copy(update={"source_id": traj.id})


def _takes_ctx(summarizer: Any) -> bool:
    import inspect

    return len(inspect.signature(summarizer.summarize_trajectory).parameters) >= 3

"""RTV over rollouts and agentic PDR (algorithms.md §1, §3), over one instance or many.

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
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field

from tts.backend import Backend
from tts.context import RunContext, SamplingDefaults
from tts.records import Candidate, Record, Task, Trajectory, TrajectorySummary, Usage
from tts.selectors.judge import ListwiseJudge
from tts.selectors.registry import Component, SummarizerField
from tts.selectors.rtv import RTV
from tts.swe.executor import on_executor
from tts.swe.instance import SWEInstance
from tts.swe.rundir import RunDir
from tts.swe.runners import AgentRunner
from tts.swe.summarize import LLMTrajectorySummary, RuleTrajectorySummary


def swe_rtv(group_size: int = 2, votes: int = 8, summary_tokens: int = 1500) -> RTV:
    """RTV with the patch-review judge prompt and room for a patch in each shown summary."""
    judge = ListwiseJudge(prompts={"judge_listwise.j2": "swe_judge.j2"}, summary_tokens=summary_tokens)
    return RTV(group_size=group_size, votes=votes, judge=judge)


class RoundRecord(Record):
    index: int
    rollout_ids: list[str]
    prior_ids: list[str] = Field(default_factory=list)
    """The summaries this round's rollouts were shown (empty in round 0)."""
    selected_ids: list[str] = Field(default_factory=list)


class SWEResult(Record):
    instance_id: str
    patch: str | None = None
    chosen_id: str | None = None
    rounds: list[RoundRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    judge_calls: int = 0
    summary_calls: int = 0
    rollouts: int = 0
    agent_cost_usd: float = 0.0
    """What the agent's own model calls cost (as the agent reported it); `usage` is judge + summaries."""
    wall_s: float = 0.0
    error: str | None = None
    rollout_errors: dict[str, int] = Field(default_factory=dict)
    """Each distinct error a rollout ended in, with how many rollouts ended in it."""
    failed_rollouts: int = 0


Event = Callable[[str, str], None]
"""`on_event(kind, instance_id)`: kind is "rollout" (one finished) or "instance"."""


class AgenticPDR(Component):
    """Configuration only; per-run state is in the arguments of `run_instance`."""

    kind: Literal["agentic-pdr"] = "agentic-pdr"
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
                raise ValueError("run_instance needs a backend (judge and summaries) or a RunContext")
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
            for c in cands:
                if c.metadata.get("error"):
                    errors[c.metadata["error"]] = errors.get(c.metadata["error"], 0) + 1
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
            picked, calls = await self._select(task, pool, rctx, k, rd, instance.instance_id, r)
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

    async def summary(self, task: Task, traj: Trajectory, r: int, k: int, ctx: RunContext, *,
                      rd: RunDir | None = None) -> tuple[TrajectorySummary, int]:
        summary = rd.load(rd.summary(task.id, r, k), TrajectorySummary) if rd else None
        if summary is not None:
            return summary, 0
        sctx = ctx.child("summarize", replica=f"{r}.{k}")
        if traj.metadata.get("error") and not traj.steps:  # nothing happened worth a model call
            summary = RuleTrajectorySummary().summarize_trajectory(traj).model_copy(update={"source_id": traj.id})
        else:
            summary = await summarize_rollout(self.summarizer, task, traj, sctx)
        if rd:
            rd.save(rd.summary(task.id, r, k), summary)
        return summary, sum(1 for rec in sctx.records if rec.role == "summarize")

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

    async def _select(self, task: Task, cands: list[Candidate], ctx: RunContext, k: int, rd: RunDir | None,
                      iid: str, r: int) -> tuple[list[Candidate], int]:
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


def usable(cands: Sequence[Candidate]) -> list[Candidate]:
    """The candidates a selector may see: rollouts that did not end in an error."""
    return [c for c in cands if not c.metadata.get("error")]


def all_failed(rounds: list[RoundRecord], errors: dict[str, int]) -> str | None:
    """The instance's error when a round ended with every rollout failed (so nothing was selected)."""
    if not rounds or rounds[-1].selected_ids or not errors:
        return None
    n = len(rounds[-1].rollout_ids)
    return f"all {n} rollouts of round {rounds[-1].index} failed"


def rollout_id(iid: str, r: int, k: int) -> str:
    return f"{iid}/round{r}-{k}"


def candidate_of(traj: Trajectory, summary: TrajectorySummary, r: int) -> Candidate:
    """What a selector sees of a rollout: its patch as text, its summary."""
    return Candidate(id=traj.id, text=traj.patch or "", summary=summary,
                     metadata={"outcome": traj.outcome, "round": r, "cost_usd": traj.metadata.get("cost_usd") or 0.0,
                               "error": traj.metadata.get("error")})


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


async def run_instances(strategy: AgenticPDR, instances: Sequence[SWEInstance], runner: AgentRunner,
                        backend: Backend | None = None, *, backends: dict[str, Backend] | None = None,
                        rundir: RunDir | str | None = None, max_rollouts_in_flight: int = 16, seed: int = 0,
                        progress: bool = True, defaults: SamplingDefaults | None = None,
                        executor: Any = None) -> list[SWEResult]:
    """Every instance in flight together; at most `max_rollouts_in_flight` rollouts run at once
    across all of them. A failing instance gets a result with `error` set; the others go on.
    `executor` (tts.swe.executor) says where rollouts run, e.g. a `RayExecutor`; default: here."""
    rd = RunDir(rundir) if isinstance(rundir, str) else rundir
    runner = on_executor(runner, executor)
    limiter = asyncio.Semaphore(max_rollouts_in_flight)
    total = len(instances) * strategy.rollouts * strategy.rounds
    with _progress(len(instances), total, disable=not progress) as on_event:
        async def one(inst: SWEInstance) -> SWEResult:
            ctx = RunContext(backend, backends=backends, seed=seed, path=f"swe/{inst.instance_id}",
                             defaults=defaults or SamplingDefaults(temperature=0.7, max_tokens=2048))
            try:
                return await strategy.run_instance(inst, runner, ctx=ctx, rundir=rd, limiter=limiter,
                                                   on_event=on_event)
            except Exception as exc:
                from tts.errors import UsageError

                if isinstance(exc, UsageError):
                    raise
                on_event("instance", inst.instance_id)
                return SWEResult(instance_id=inst.instance_id, usage=ctx.usage, error=f"{type(exc).__name__}: {exc}")

        return list(await asyncio.gather(*(one(i) for i in instances)))


class _progress:
    """A rich progress bar with rollouts and instances; a no-op when disabled."""

    def __init__(self, n_instances: int, n_rollouts: int, *, disable: bool) -> None:
        self.sizes = (n_instances, n_rollouts)
        self.disable = disable
        self.progress: Any = None

    def __enter__(self) -> Event:
        if self.disable:
            return lambda kind, iid: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=False)
        self.progress.start()
        inst = self.progress.add_task("instances", total=self.sizes[0])
        roll = self.progress.add_task("rollouts", total=self.sizes[1])

        def on_event(kind: str, iid: str) -> None:
            self.progress.advance(inst if kind == "instance" else roll)

        return on_event

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

"""Agent runners: one rollout of one instance, optionally conditioned on summaries of earlier ones.

    AgentRunner          the protocol: `await runner.run(instance, prior, rollout_id=...) -> Trajectory`
                         (exit status in `outcome`, the patch in `patch`: the submission, or the
                         working tree's `git diff` when the agent did not submit)
    MiniSweAgentRunner   mini-swe-agent as a library (tts/swe/mswea.py, re-exported here)
    ReplayRunner         saved trajectories, handed out in order per instance
    ScriptedRunner       any function as an agent (tests, benchmarks)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from tts.errors import UsageError
from tts.records import Trajectory, TrajectorySummary
from tts.swe.git import clone_at, working_tree_diff
from tts.swe.instance import SWEInstance
from tts.swe.local_agent import LOCAL_AGENT, LOCAL_CONFIG_SPEC, LOCAL_MODEL, LOCAL_REPLY_TOKENS, LOCAL_STEP_LIMIT
from tts.swe.model_errors import check_agent_model, context_overflow, fail_fast, one_line, refused
from tts.swe.mswea import MiniSweAgentConfig, MiniSweAgentRunner, ModelFactory, import_minisweagent, swebench_image
from tts.swe.prior import PRIOR_BLOCK, render_prior

__all__ = ["LOCAL_AGENT", "LOCAL_CONFIG_SPEC", "LOCAL_MODEL", "LOCAL_REPLY_TOKENS", "LOCAL_STEP_LIMIT", "PRIOR_BLOCK",
           "AgentFn", "AgentRunner", "MiniSweAgentConfig", "MiniSweAgentRunner", "ModelFactory", "ReplayRunner",
           "ScriptedRunner", "check_agent_model", "clone_at", "context_overflow", "fail_fast", "import_minisweagent",
           "one_line", "refused", "render_prior", "swebench_image", "working_tree_diff"]


class AgentRunner(Protocol):
    """One agent rollout on an instance, seeing summaries of earlier attempts (`prior`)."""

    async def run(self, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                  rollout_id: str = "r0") -> Trajectory: ...



class ReplayRunner:
    """Hands out saved trajectories: the i-th rollout of an instance gets its i-th saved run
    (cycling). `prior` is ignored but recorded in the trajectory's metadata."""

    def __init__(self, trajectories: dict[str, list[Trajectory]]) -> None:
        self.trajectories = trajectories
        self._next: dict[str, int] = {}

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path]) -> ReplayRunner:
        from tts.swe.readers import read_runs

        by_iid: dict[str, list[Trajectory]] = {}
        for p in paths:
            for t in read_runs(p):
                by_iid.setdefault(t.task_id or t.id, []).append(t)
        return cls(by_iid)

    async def run(self, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                  rollout_id: str = "r0") -> Trajectory:
        saved = self.trajectories.get(instance.instance_id)
        if not saved:
            raise UsageError(f"no saved trajectory for instance {instance.instance_id}")
        i = self._next.get(instance.instance_id, 0)
        self._next[instance.instance_id] = i + 1
        t = saved[i % len(saved)]
        return t.model_copy(update={"id": rollout_id, "task_id": instance.instance_id,
                                    "metadata": {**t.metadata, "replayed_from": t.id,
                                                 "prior_ids": [s.source_id for s in prior]}})


AgentFn = Callable[[SWEInstance, Sequence[TrajectorySummary], str], Any]


class ScriptedRunner:
    """An agent that is a function `(instance, prior, rollout_id) -> Trajectory | str (a patch)`,
    sync or async; `delay_s` makes each rollout take that long (benchmarks). Records every call."""

    def __init__(self, fn: AgentFn, *, delay_s: float = 0.0) -> None:
        self.fn = fn
        self.delay_s = delay_s
        self.calls: list[tuple[str, str, list[str]]] = []

    async def run(self, instance: SWEInstance, prior: Sequence[TrajectorySummary] = (), *,
                  rollout_id: str = "r0") -> Trajectory:
        self.calls.append((instance.instance_id, rollout_id, [s.source_id for s in prior]))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = self.fn(instance, list(prior), rollout_id)
        if inspect.isawaitable(out):
            out = await out
        if isinstance(out, Trajectory):
            return out
        return Trajectory(id=rollout_id, task_id=instance.instance_id, outcome="Submitted", patch=str(out) or None,
                          metadata={"prior_ids": [s.source_id for s in prior]})

"""Agentic test-time scaling over coding-agent rollouts (SWE-Bench, Terminal-Bench).

Modules, one job each:
    instance     SWE-bench-shaped rows and where they come from (a local JSONL, a hub dataset)
    readers      saved agent runs (mini-swe-agent, Terminus-1, harbor ATIF) -> `Trajectory`
    summarize    `Trajectory` -> bounded `TrajectorySummary` (LLM, with a no-model fallback)
    runners      the agent-runner protocol; mini-swe-agent as a library; replay; scripted
    rundir       a run directory where every step is a file, so a rerun skips what exists
    pipeline     RTV over rollouts and agentic PDR, as awaitables over one instance or many
    grade        predictions files, the swebench harness, and a local grader for fixtures
    toy          a tiny SWE-bench-shaped instance (a git repo with a failing test) for tests and demos
    executor     where rollouts and evaluations run: the seam and the local executor
    ray_executor one Ray task per rollout / evaluated instance (the `ray` extra); ray_cluster: a
                 throwaway multi-node cluster on loopback; eval_tasks: evaluation through an executor

Nothing here imports mini-swe-agent, swebench, docker or ray at import time (the `swe`, `ray` extras).
"""

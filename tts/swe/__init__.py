"""Agentic test-time scaling over coding-agent rollouts (SWE-Bench, Terminal-Bench).

Modules, one job each:
    instance     SWE-bench-shaped rows and where they come from (a local JSONL, a hub dataset)
    readers      saved agent runs -> `Trajectory`: the dispatch (read_runs, read_trajectory); read_mswea
                 (mini-swe-agent runs and batches), read_terminal (Terminus-1, ATIF), read_common
    summarize    `Trajectory` -> bounded `TrajectorySummary` (LLM, on the core's summary loop, with a
                 no-model fallback); evidence (what a trajectory shows without a model); fit (a
                 trajectory cut to a summarizer's room)
    runners      the agent-runner protocol; replay; scripted. mswea: mini-swe-agent as a library;
                 local_agent: the embedded model as its model; model_errors: what an agent's model
                 error means; prior: what an agent is shown of earlier attempts; git: clones and diffs
    rundir       a run directory where every step is a file, so a rerun skips what exists
    pipeline     RTV over rollouts and agentic PDR over one instance; results: what a run records;
                 batch: many instances on the core's runner (`tts.run.run_many`)
    grade        predictions files, the swebench harness, and a local grader for fixtures
    toy          a tiny SWE-bench-shaped instance (a git repo with a failing test) for tests and demos
    executor     where rollouts and evaluations run: the seam and the local executor
    ray_executor one Ray task per rollout / evaluated instance (the `ray` extra); ray_cluster: a
                 throwaway multi-node cluster on loopback; eval_tasks: evaluation through an executor

Nothing here imports mini-swe-agent, swebench, docker or ray at import time (the `swe`, `ray` extras).
"""

from tts._lazy import lazy_exports as _lazy_exports

# public name -> module; resolved lazily, so `import tts.swe` imports none of the extras
_EXPORTS: dict[str, str] = {
    "AgenticPDR": "tts.swe.pipeline", "SWEResult": "tts.swe.pipeline", "run_instances": "tts.swe.pipeline",
    "SWEInstance": "tts.swe.instance", "load_instances": "tts.swe.instance",
    "MiniSweAgentRunner": "tts.swe.runners", "ReplayRunner": "tts.swe.runners", "ScriptedRunner": "tts.swe.runners",
    "LLMTrajectorySummary": "tts.swe.summarize", "RuleTrajectorySummary": "tts.swe.summarize",
    "read_trajectory": "tts.swe.readers", "read_runs": "tts.swe.readers",
}

__all__ = sorted(_EXPORTS)


__getattr__ = _lazy_exports(__name__, _EXPORTS)

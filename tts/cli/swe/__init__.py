"""`tts swe ...`: agentic test-time scaling on SWE-bench-shaped instances, step by step or at once.

    tts swe rollout   --dataset D --run-dir R --n 16          N rollouts per instance (round 0, or --round r)
    tts swe summarize --run-dir R                             summarize every saved rollout without a summary
    tts swe select    --run-dir R [--round r] [--select-k K]  RTV over a round's summaries
    tts swe pdr       --dataset D --run-dir R --n 16 --rounds 2 --select-k 4
    tts swe preds     --run-dir R                             preds.json (swebench's format)
    tts swe eval      --run-dir R --grader swebench|local     the swebench harness, or the local grader
    tts swe run       ...                                     pdr + preds + eval
    tts swe import    PATH... --run-dir R                     saved runs (mini-swe-agent, Terminus, ATIF) -> rollouts

Every step reads and writes files in the run dir; a rerun skips what exists.
"""

from __future__ import annotations

import argparse
from typing import Any

from tts.cli.swe.common import guarded
from tts.cli.swe.executor_flags import add_executor_flags
from tts.cli.swe.files import step_eval, step_import, step_preds, step_run
from tts.cli.swe.steps import step_pdr, step_rollout, step_select, step_summarize
from tts.swe.results import error_lines  # noqa: F401  (re-exported: it lived here)

STEPS = ("rollout", "summarize", "select", "pdr", "preds", "eval", "run", "import")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("swe", help="agentic test-time scaling on SWE-bench-shaped instances",
                       description=__doc__.splitlines()[0])
    steps = p.add_subparsers(dest="step", metavar="STEP", parser_class=type(p))
    for name in STEPS:
        sp = steps.add_parser(name, help=_HELP[name], description=_HELP[name])
        sp.add_argument("--run-dir", required=True, help="the run directory (created if absent)")
        if name in ("rollout", "summarize", "select", "pdr", "run", "eval", "import"):
            _data_flags(sp)
        if name in ("rollout", "pdr", "run"):
            _agent_flags(sp)
        if name in ("summarize", "select", "pdr", "run"):
            _judge_flags(sp, name)
        if name in ("preds", "run", "eval", "import"):
            sp.add_argument("--model-name", default=None, help="model_name_or_path in preds.json (default: --model)")
        if name in ("eval", "run"):
            _eval_flags(sp)
        if name in ("rollout", "pdr", "run", "eval"):
            add_executor_flags(sp)
        if name == "import":
            sp.add_argument("paths", nargs="+", metavar="PATH",
                            help="mini-swe-agent batch output dirs, or single saved runs (mini-swe-agent .traj.json, "
                                 "Terminus-1 trial dirs, ATIF .json)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        sp.set_defaults(handler=guarded(_HANDLERS[name]))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


_HELP = {
    "rollout": "run N agent rollouts per instance",
    "summarize": "summarize saved rollouts",
    "select": "RTV over a round's rollout summaries",
    "pdr": "agentic PDR (rounds of rollouts, RTV select-K as context, final RTV); --rounds 1 is RTV over rollouts",
    "preds": "write preds.json from the run dir's selections",
    "eval": "evaluate preds.json: the swebench harness (Docker/Modal) or the local grader",
    "run": "pdr, preds and eval in one go",
    "import": "import saved agent runs (mini-swe-agent batch output, trajectories) as round-0 rollouts",
}


def _data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None,
                   help="a local .jsonl/.json of SWE-bench-shaped rows, or a hub name (SWE-bench/SWE-bench_Verified); "
                   "default: the run dir's instances.jsonl")
    g.add_argument("--split", default="test")
    g.add_argument("--instance-ids", nargs="+", default=None, metavar="ID", help="only these instances")


def _agent_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agent")
    g.add_argument("--model", help="the agent's litellm model (also judge and summarizer unless set apart)")
    g.add_argument("--api-base", help="endpoint URL, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--api-key", help="API key (default: the provider's usual environment variable)")
    g.add_argument("--agent", choices=["mini-swe-agent", "replay"], default="mini-swe-agent")
    g.add_argument("--replay", nargs="+", default=[], metavar="PATH",
                   help="saved trajectories or batch dirs for --agent replay")
    g.add_argument("--env", choices=["local", "docker"], default="local",
                   help="local: a fresh clone per rollout (rows need repo_path); docker: SWE-bench images")
    g.add_argument("--model-class", default="litellm", help="litellm (tool calls) or litellm_textbased")
    g.add_argument("--mswea-config", default="swebench.yaml", help="mini-swe-agent config (name or YAML path)")
    g.add_argument("--step-limit", type=int, default=None)
    g.add_argument("--cost-limit", type=float, default=None)
    g.add_argument("--agent-temperature", type=float, default=None)
    g.add_argument("--n", type=int, default=16, help="rollouts per instance per round (N)")
    g.add_argument("--round", type=int, default=0, help="(rollout) which round; r>0 uses round r-1's selection")
    g.add_argument("--concurrency", type=int, default=16, help="rollouts in flight across all instances")


def _judge_flags(p: argparse.ArgumentParser, step: str) -> None:
    g = p.add_argument_group("summaries" if step == "summarize" else "judge and summaries")
    if step in ("summarize", "select"):
        g.add_argument("--model", help=f"the {'summarizer' if step == 'summarize' else 'judge'} model "
                                       "(a litellm model string, or 'local' for the embedded model)")
        g.add_argument("--api-base")
        g.add_argument("--api-key")
    if step == "select":
        g.add_argument("--round", type=int, default=None, help="which round (default: the last saved)")
    if step != "summarize":
        g.add_argument("--judge-model", help="a separate judge model (default: --model)")
    g.add_argument("--backend", choices=["litellm", "openai"], default="litellm")
    if step != "select":
        g.add_argument("--summarizer", choices=["llm", "rule"], default="llm",
                       help="llm: a model call per rollout (the rule summary when the model fails); "
                            "rule: no model (commands, exit codes, tests, errors, patch)")
        g.add_argument("--context-tokens", type=int, default=None,
                       help="the summarizer model's context window (default: asked of the server or litellm); "
                            "the trajectory shown is cut to fit")
    if step != "summarize":
        g.add_argument("--group-size", type=int, default=2, help="RTV group size G")
        g.add_argument("--votes", type=int, default=8, help="RTV votes per group V")
        g.add_argument("--select-k", type=int, default=None, help="K summaries carried as context (pdr: 4; select: 1)")
    if step in ("pdr", "run"):
        g.add_argument("--rounds", type=int, default=2, help="T rounds (1: RTV over N rollouts)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--cache-dir", default=None, help="judge/summary call cache (default: none)")


def _eval_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--grader", choices=["swebench", "local"], default="swebench",
                   help="swebench: the official harness (needs Docker or --modal); local: rows' test_cmd in a clone")
    g.add_argument("--run-id", default=None, help="evaluation run id (default: the run dir's name)")
    g.add_argument("--max-workers", type=int, default=4)
    g.add_argument("--modal", action="store_true", help="run the swebench harness on Modal")
    g.add_argument("--preds", default=None, help="predictions file (default: <run-dir>/preds.json)")


_HANDLERS = {"rollout": step_rollout, "summarize": step_summarize, "select": step_select, "pdr": step_pdr,
             "preds": step_preds, "eval": step_eval, "run": step_run, "import": step_import}

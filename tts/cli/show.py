"""`tts show run.jsonl`: a run's trace as a tree by strategy path, with per-node usage
(calls, tokens, cached calls, latency), and its results as a table."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("show", help="print a trace written by `tts run --trace` as a tree",
                       description=__doc__.splitlines()[0])
    p.add_argument("trace", help="trace JSONL file (tts run --trace FILE)")
    p.add_argument("--task", help="only this task id")
    p.add_argument("--per-task", action="store_true", help="one tree per task instead of one for the run")
    p.add_argument("--no-results", action="store_true", help="do not print the per-task results table")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tts.display import call_tree, render_tree, results_table
    from tts.errors import UsageError
    from tts.trace import read_trace

    trace = read_trace(args.trace)
    calls, results = trace.calls, trace.results
    if args.task is not None:
        calls = [c for c in calls if c.task_id == args.task]
        results = [r for r in results if r.task_id == args.task]
        if not calls and not results:
            raise UsageError(f"task {args.task!r} is not in {args.trace}")
    console = Console()
    title = f"{args.trace} ({len({c.task_id for c in calls})} tasks, written {trace.header.created})"
    if args.per_task:
        for task_id in dict.fromkeys(c.task_id for c in calls):
            console.print(render_tree(call_tree([c for c in calls if c.task_id == task_id]), f"task {task_id}"))
    else:
        console.print(render_tree(call_tree(calls), title))
    if results and not args.no_results:
        console.print(results_table(results))
    return 0

"""`tts compare TASKS --model M --grid GRID.yaml --out DIR`: strategies and budgets side by side.

The grid is a YAML/JSON list of strategy specs in which any field may be a list (every
combination runs); several --model values make the model one more axis. Configurations share
samples through the cache (self-consistency n=4 reuses the first 4 of n=16's samples), each row
reports what its own answers consumed, and a killed compare, run again, re-sends nothing that had
completed. Writes DIR/results.jsonl, DIR/summary.json, the plots and DIR/index.html.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tts.cli.run import _check_limits, add_backend_flags, make_backends, sampling_defaults
from tts.cli.view import add_trace_content_flag, open_trace
from tts.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare strategies and budgets on a task file (grid, intervals, plots)",
                       description=__doc__.splitlines()[0])
    p.add_argument("tasks", help="JSONL task file, as for tts run")
    add_backend_flags(p, models=True)
    g = p.add_argument_group("comparison")
    g.add_argument("--grid", required=True, metavar="GRID", help="YAML/JSON list of strategy specs; any field may "
                   "be a list, e.g. [{kind: single}, {kind: self-consistency, n: [4, 8, 16]}]")
    g.add_argument("--out", required=True, metavar="DIR", help="results.jsonl, summary.json, plots, index.html")
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    g.add_argument("--baseline", metavar="LABEL", help="the row every other row is paired against "
                   "(default: the first configuration)")
    g.add_argument("--latency", type=float, metavar="S", help="per-call latency for wall_s = stages x latency "
                   "(default: the median measured on this run's paid calls)")
    g.add_argument("--answer-format", help="auto | last-number | boxed | answer-line | regex:PATTERN, for every "
                   "configuration that does not set its own")
    g.add_argument("--trace", metavar="FILE", help="write every call of every configuration (strategy path, role, "
                   "tokens, latency, cached, what was said) to this JSONL; `tts view FILE` opens it in a browser")
    add_trace_content_flag(g)
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_handle)


def _with_answer_format(grid: list[dict[str, Any]], fmt: str | None) -> list[dict[str, Any]]:
    if fmt is None:
        return grid
    return [item if "answer_format" in item else {**item, "answer_format": fmt} for item in grid]


async def _handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tts.experiments.grid import expand_grid, load_grid
    from tts.experiments.runner import compare
    from tts.spec import strategy_from_spec
    from tts.tasks import load_tasks

    _check_limits(args)
    if args.no_cache:
        raise ConfigError("tts compare shares samples and resumes through the cache, so --no-cache does not "
                          "apply; use --cache-dir DIR for a fresh one")
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if args.latency is not None and args.latency <= 0:
        raise ConfigError(f"--latency must be positive, got {args.latency}")
    models = list(dict.fromkeys(args.model))
    tasks = load_tasks(args.tasks)
    grid = _with_answer_format(load_grid(args.grid), args.answer_format)
    configs = expand_grid(grid, models)  # every spec validated before any backend starts
    defaults = sampling_defaults(args, [strategy_from_spec(c.spec) for c in configs])
    per_model: dict[str, Any] = {}
    judges: dict[str, dict[str, Any]] = {}
    try:
        for model in models:
            per_model[model], judges[model] = make_backends(args, model)
        result = await _compare_models(tasks, grid, per_model, judges, args, defaults, compare)
    finally:
        for b in [*per_model.values(), *(j for roles in judges.values() for j in roles.values())]:
            await b.aclose()
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(result.table())
    for model, paid in result.paid.items():
        console.print(f"paid by this compare on {model}: {paid.calls} calls, {paid.total_tokens:,} tokens, "
                      f"${paid.cost_usd:.4f} ({paid.cached_calls} answers from the cache)")
    out = Path(args.out)
    console.print(f"wrote {out / 'summary.json'}, {out / 'results.jsonl'}, {out / 'index.html'}")
    rows = result.rows
    _say_first_error(out, sum(r["errors"] for r in rows))
    if any(r["budget_exceeded"] for r in rows):
        return 3
    return 1 if any(r["errors"] for r in rows) else 0


def _say_first_error(out: Path, errors: int) -> None:
    """One line on stderr for the runs that failed (e.g. rejected credentials), as `tts run` prints."""
    from tts.experiments.runner import RESULTS, read_lines
    from tts.redact import redact

    first = next((line for line in read_lines(out / RESULTS).values() if line.get("status") == "error"), None)
    if errors and first is not None:
        print(redact(f"{errors} run(s) failed; first: {first['label']} | {first['task']}: {first['error']}"),
              file=sys.stderr)


async def _compare_models(tasks, grid, per_model, judges, args, defaults, compare):  # type: ignore[no-untyped-def]
    """One compare over every model. A judge on its own endpoint is per model (it shares that
    model's budget); with no judge flags every role uses the model itself."""
    any_judge = next((j for j in judges.values() if j), None)
    if any_judge is not None and len(per_model) > 1:
        raise ConfigError("--judge-model/--judge-api-base with several --model values: compare one model at a time")
    trace = open_trace(args, {"models": list(per_model), "grid": grid})
    references = {t.id: t.answer for t in tasks}
    try:
        return await compare(tasks, grid, per_model, out=args.out, baseline=args.baseline, bootstrap=args.bootstrap,
                             backends=any_judge, defaults=defaults, seed=args.seed or 0, latency_s=args.latency,
                             progress=not args.quiet, trace_content=trace is not None and trace.content,
                             on_result=(lambda cfg, res: trace.write_result(  # one trace: tell the rows apart
                                 res.model_copy(update={"task_id": f"{cfg.label} | {res.task_id}"}),
                                 references.get(res.task_id)))
                             if trace is not None else None)
    finally:
        if trace is not None:
            trace.close()

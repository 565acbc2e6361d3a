"""`tts plan TASKS --model M --max-cost USD [--max-latency S]`: which N / V / rounds fit a budget.

Runs a small pilot (the first `--pilot` tasks, cached), measures what a sample, a judge call, a
draft on a workspace and a refine call cost and how long they take, and prints for
self-consistency (N), RTV (N, V), PDR (drafts, rounds) and sequential refinement (rounds) the
configurations with their projected cost for all the tasks, latency per task (stages x measured
latency) and pilot accuracy (for those that fit). See tts.experiments.plan.
"""

from __future__ import annotations

import argparse
from typing import Any

from tts.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="a small pilot, then the N / V / rounds that fit a budget",
                       description=__doc__.splitlines()[0])
    p.add_argument("tasks", help="JSONL task file (the budget is for all of it; the pilot runs its first tasks)")
    p.add_argument("--model", required=True)
    p.add_argument("--api-base")
    p.add_argument("--api-key")
    p.add_argument("--backend", choices=["litellm", "openai"], default="litellm")
    p.add_argument("--max-cost", type=float, required=True, help="USD for running every task of TASKS")
    p.add_argument("--max-latency", type=float, help="seconds per task")
    p.add_argument("--strategies", default="self-consistency,rtv,pdr,sequential-refinement",
                   help="comma-separated: self-consistency, rtv, pdr, sequential-refinement")
    p.add_argument("--pilot", type=int, default=3, help="pilot tasks (default 3)")
    p.add_argument("--price", help="USD per million prompt,completion tokens, for a model without a known price")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", help="call cache (default: the same as tts run)")
    p.set_defaults(handler=_handle)


def _price(value: str | None):
    if value is None:
        return None
    try:
        a, b = (float(x) for x in value.split(","))
    except ValueError:
        raise ConfigError(f"--price wants two numbers, USD per million prompt,completion tokens; "
                          f"got {value!r}") from None
    if a < 0 or b < 0:
        raise ConfigError("--price must not be negative")
    return lambda prompt, completion: (prompt * a + completion * b) / 1e6


async def _handle(args: argparse.Namespace) -> int:
    from tts.build import make_backend
    from tts.cli.run import default_cache_dir
    from tts.context import SamplingDefaults
    from tts.experiments.plan import STRATEGIES, make_plan
    from tts.tasks import load_tasks

    if args.max_cost <= 0:
        raise ConfigError(f"--max-cost must be positive, got {args.max_cost}")
    if args.max_latency is not None and args.max_latency <= 0:
        raise ConfigError(f"--max-latency must be positive, got {args.max_latency}")
    if args.pilot < 1:
        raise ConfigError(f"--pilot must be at least 1, got {args.pilot}")
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies:
        raise ConfigError(f"--strategies: unknown {', '.join(bad) or '(none)'}; allowed: {', '.join(STRATEGIES)}")
    price = _price(args.price)
    tasks = load_tasks(args.tasks)
    backend = make_backend(args.model, backend=args.backend, api_base=args.api_base, api_key=args.api_key,
                           cache_dir=args.cache_dir or default_cache_dir())
    defaults = SamplingDefaults(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)
    try:
        plan = await make_plan(tasks, backend, max_cost=args.max_cost, max_latency=args.max_latency,
                               strategies=strategies, pilot=args.pilot, defaults=defaults, seed=args.seed, price=price)
    finally:
        await backend.aclose()
    print_plan(plan)
    return 0


def print_plan(plan: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width))
    budget = f"${plan.max_cost:g} for {plan.tasks} tasks"
    if plan.max_latency is not None:
        budget += f", {plan.max_latency:g} s per task"
    for c in plan.costs:
        lat = "?" if c.latency_s is None else f"{c.latency_s:.2f} s"
        console.print(f"pilot: {c.calls} {c.role} calls, ${c.cost_usd:.6f} and {c.tokens:.0f} tokens each, {lat}")
    table = Table(title=f"budget {budget} (pilot: {plan.pilot_tasks} tasks)")
    for col in ("strategy", "config", "calls/task", "projected cost", "latency/task", "pilot accuracy", "fits"):
        table.add_column(col, justify="left" if col in ("strategy", "config") else "right")
    for r in plan.rows:
        table.add_row(r.strategy, " ".join(f"{k}={v}" for k, v in r.config.items()), str(r.calls_per_task),
                      f"${r.cost_usd:.4f}", "?" if r.latency_s is None else f"{r.latency_s:.1f} s",
                      "-" if r.pilot_accuracy is None else f"{r.pilot_accuracy:.2f}", "yes" if r.fits else "no")
    console.print(table)
    best = plan.best
    if best is not None:
        cfg = " ".join(f"--{k} {v}" for k, v in best.config.items())
        console.print(f"best on the pilot within budget: --strategy {best.strategy} {cfg} "
                      f"(${best.cost_usd:.4f}, accuracy {best.pilot_accuracy:.2f})")
    else:
        console.print("nothing fits the budget" if not any(r.fits for r in plan.rows) else
                      "no pilot accuracy (the tasks have no reference answers)")
    paid = plan.pilot_paid
    console.print(f"the pilot paid {paid.calls} calls, {paid.total_tokens} tokens, ${paid.cost_usd:.4f}")
    for note in plan.notes:
        console.print(f"note: {note}")

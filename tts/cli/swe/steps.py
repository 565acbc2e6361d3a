"""The `tts swe` steps that call the agent or the models: rollout, summarize, select, pdr."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tts.cli.swe.common import (
    close_all,
    instance_ctx,
    load_rows,
    make_runner,
    make_strategy,
    make_swe_backends,
    open_rundir,
    require_positive,
    saved_rounds,
)
from tts.cli.swe.executor_flags import make_executor
from tts.errors import UsageError
from tts.swe.results import error_lines


async def step_rollout(args: argparse.Namespace) -> int:
    import asyncio

    from tts.swe.executor import on_executor
    from tts.swe.pipeline import AgenticPDR, rollout_bars

    require_positive(args, "n", "concurrency")
    rd = open_rundir(args)
    rows = load_rows(args, rd)
    runner = make_runner(args)
    executor = await make_executor(args, runner)
    runner = on_executor(runner, executor)
    limiter = asyncio.Semaphore(args.concurrency)
    strat = AgenticPDR(rollouts=args.n, rounds=1)
    with rollout_bars(len(rows), len(rows) * args.n, disable=args.quiet) as on_event:
        async def one(inst: Any) -> None:
            prior = strat.saved_prior(rd, inst.instance_id, args.round) if args.round > 0 else []
            if args.round > 0 and not prior:
                raise UsageError(f"round {args.round} needs round {args.round - 1}'s selection for "
                                 f"{inst.instance_id}; run 'tts swe select --round {args.round - 1} --select-k K'")
            await asyncio.gather(*(strat.rollout(inst, runner, prior, args.round, k, rd=rd, limiter=limiter,
                                                 on_event=on_event) for k in range(args.n)))
            on_event("instance", inst.instance_id)

        try:
            await asyncio.gather(*(one(i) for i in rows))
        finally:
            await close_all(runner, executor)
    print(f"rollouts in {rd.root / 'rollouts'}")
    return 0


async def step_summarize(args: argparse.Namespace) -> int:
    import asyncio

    from tts.records import Trajectory

    rd = open_rundir(args)
    rows = rd.matched(load_rows(args, rd), only=args.instance_ids, source=args.dataset)
    strat = make_strategy(args)
    # The rule summarizer makes no model call: no backend, no context.
    backend, extra = (None, {}) if args.summarizer == "rule" else make_swe_backends(args)
    made = 0
    try:
        async def one(inst: Any) -> int:
            ctx = None if backend is None else instance_ctx(args, backend, extra, inst.instance_id)
            n = 0
            for r, ks in saved_rounds(rd, inst.instance_id).items():
                for k in ks:
                    if rd.summary(inst.instance_id, r, k).is_file():
                        continue
                    traj = rd.load(rd.rollout(inst.instance_id, r, k), Trajectory)
                    await strat.summary(inst.as_task(), traj, r, k, ctx, rd=rd)
                    n += 1
            return n

        made = sum(await asyncio.gather(*(one(i) for i in rows)))
    finally:
        await close_all(backend, *extra.values())
    print(f"{made} summaries written to {rd.root / 'summaries'}")
    return 0


async def step_select(args: argparse.Namespace) -> int:
    import asyncio

    from tts.records import Trajectory, TrajectorySummary
    from tts.swe.results import SWEResult, candidate_of, count_errors, usable

    rd = open_rundir(args)
    rows = rd.matched(load_rows(args, rd), only=args.instance_ids, source=args.dataset)
    k = args.select_k or 1
    strat = make_strategy(args, select_k=k)
    backend, extra = make_swe_backends(args)
    try:
        async def one(inst: Any) -> SWEResult:
            iid = inst.instance_id
            saved = saved_rounds(rd, iid)
            if not saved:
                raise UsageError(f"no rollouts saved for {iid}; run 'tts swe rollout' first")
            r = max(saved) if args.round is None else args.round
            cands = []
            for j in sorted(saved.get(r, [])):
                s = rd.load(rd.summary(iid, r, j), TrajectorySummary)
                if s is None:
                    raise UsageError(f"rollout {iid} round {r} #{j} has no summary; run 'tts swe summarize' first")
                cands.append(candidate_of(rd.load(rd.rollout(iid, r, j), Trajectory), s, r))
            ctx = instance_ctx(args, backend, extra, iid)
            errors = count_errors(cands)
            pool = usable(cands)  # no judge call on rollouts that ended in an error
            picked, calls = await strat.select_round(inst.as_task(), pool, ctx.child(f"round{r}"), k, rd=rd, iid=iid,
                                                     r=r) if pool else ([], 0)
            res = SWEResult(instance_id=iid, patch=picked[0].text or None if picked else None,
                            chosen_id=picked[0].id if picked else None, judge_calls=calls, usage=ctx.usage,
                            rollouts=len(cands), rollout_errors=errors, failed_rollouts=sum(errors.values()),
                            error=None if pool else f"all {len(cands)} rollouts of round {r} failed")
            if k == 1:
                rd.save(rd.result(iid), res)
            return res

        results = await asyncio.gather(*(one(i) for i in rows))
    finally:
        await close_all(backend, *extra.values())
    for res in results:
        print(f"{res.instance_id}: {res.chosen_id or '-'} ({res.judge_calls} judge calls, "
              f"{res.rollouts - res.failed_rollouts} of {res.rollouts} rollouts usable)")
        for line in error_lines(res):
            print(f"  error: {line}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


async def step_pdr(args: argparse.Namespace) -> int:
    from tts.swe.pipeline import run_instances

    require_positive(args, "n", "rounds", "concurrency")
    rd = open_rundir(args)
    rows = load_rows(args, rd)
    runner = make_runner(args)
    strat = make_strategy(args, rounds=args.rounds, n=args.n, select_k=args.select_k or 4)
    executor = await make_executor(args, runner)
    backend, extra = make_swe_backends(args)
    started = time.perf_counter()
    try:
        results = await run_instances(strat, rows, runner, backend, backends=extra, rundir=rd,
                                      max_rollouts_in_flight=args.concurrency, seed=args.seed, progress=not args.quiet,
                                      executor=executor)
    finally:
        await close_all(backend, *extra.values(), runner, executor)
    return report_table(results, started)


def report_table(results: list[Any], started: float) -> int:
    """The per-instance table (stderr), each distinct error in full below it, the wall time; exit 1 on any error."""
    from rich.console import Console

    from tts.display import table

    rows, lines = [], []
    for r in results:
        errs = error_lines(r)
        rows.append((r.instance_id, r.chosen_id or "-", len((r.patch or "").splitlines()), r.rollouts,
                     r.failed_rollouts, f"{r.agent_cost_usd:.4f}", r.summary_calls, r.judge_calls,
                     r.usage.total_tokens, "\n".join(errs)))
        lines.extend(f"{r.instance_id}: {e}" for e in errs)
    t = table(("instance", "chosen", "patch lines", "rollouts", "failed", "agent $", "summaries", "judge calls",
               "tokens", "errors"), rows, title="tts swe",
              options={"errors": {"no_wrap": True, "overflow": "ellipsis", "max_width": 90}})
    console = Console(stderr=True, width=max(Console(stderr=True).width, 160))
    console.print(t)
    for line in lines:  # in full, one per distinct error, whatever the terminal's width
        print(f"error: {line}", file=sys.stderr)
    console.print(f"wall {time.perf_counter() - started:.1f} s")
    return 1 if any(r.error for r in results) else 0

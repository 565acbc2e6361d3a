"""Agentic PDR at scale with a scripted agent: is wall time set by stages and the in-flight bound,
and are the judge and summary call counts exactly the method's?

    python benchmarks/agentic.py [--instances 20] [--rollouts 8] [--rounds 2] [--select-k 4]
                                 [--rollout-s 0.2] [--call-s 0.05] [--bounds 16,64,1000]

Every rollout sleeps `rollout-s` and returns a patch; every judge and summary call sleeps `call-s`
(the scripted backend). For each bound B on rollouts in flight (shared by all instances):

    stages  = T * (rollout + summary) + (RTV rounds of every selection) * call   (one instance's path)
    bound   = ceil(I * N * T / B) * rollout + summary + (final RTV rounds) * call  (waves, then the tail)
    ideal   = max(stages, bound)

Judge calls, G = 2: V * (N - K) per select-K and V * (N - 1) for the final pick, per instance.
Summary calls: one per rollout, N * T per instance.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts.swe.instance import SWEInstance
from tts.swe.pipeline import AgenticPDR, run_instances, swe_rtv
from tts.swe.runners import ScriptedRunner
from tts.swe.summarize import LLMTrajectorySummary
from tts.testing import ScriptedBackend, request_text

PATCH = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
SUMMARY = json.dumps({"approach": "changed x", "status_claim": "tests pass",
                      "evidence": [{"kind": "test", "quote": "1 passed", "exit_code": 0}]})


def reply(request):
    return SUMMARY if "Summarize the coding-agent run" in request_text(request) else "WINNER: 1"


def rtv_rounds(n: int, k: int) -> int:
    """Tournament rounds from n to k with pairs (byes for leftovers)."""
    rounds = 0
    while n > k:
        n -= min(n // 2, n - k)
        rounds += 1
    return rounds


async def one_setting(args: argparse.Namespace, bound: int) -> dict:
    instances = [SWEInstance(instance_id=f"bench__{i}", problem_statement=f"issue {i}")
                 for i in range(args.instances)]
    runner = ScriptedRunner(lambda inst, prior, rid: PATCH, delay_s=args.rollout_s)
    backend = ScriptedBackend(reply, latency=args.call_s)
    strat = AgenticPDR(rollouts=args.rollouts, rounds=args.rounds, select_k=args.select_k,
                       summarizer=LLMTrajectorySummary(), selector=swe_rtv(group_size=2, votes=args.votes))
    started, cpu0 = time.perf_counter(), time.process_time()
    results = await run_instances(strat, instances, runner, backend, max_rollouts_in_flight=bound, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    n, k, t, v = args.rollouts, args.select_k, args.rounds, args.votes
    select_rounds = (t - 1) * rtv_rounds(n, k) + rtv_rounds(n, 1)
    stages = t * (args.rollout_s + args.call_s) + select_rounds * args.call_s
    total_rollouts = args.instances * n * t
    waves = math.ceil(total_rollouts / bound)
    bound_s = waves * args.rollout_s + args.call_s + rtv_rounds(n, 1) * args.call_s
    ideal = max(stages, bound_s)
    judge_formula = args.instances * v * ((t - 1) * (n - k) + (n - 1))
    summary_formula = args.instances * n * t
    return {
        "bound": bound, "rollouts": len(runner.calls), "stages_s": stages, "bound_s": bound_s, "ideal_s": ideal,
        "wall_s": wall, "ratio": wall / ideal,
        "judge": sum(r.judge_calls for r in results), "judge_formula": judge_formula,
        "summary": sum(r.summary_calls for r in results), "summary_formula": summary_formula,
        "backend_calls": backend.calls, "cpu_s": cpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--select-k", type=int, default=4)
    ap.add_argument("--votes", type=int, default=8)
    ap.add_argument("--rollout-s", type=float, default=0.2)
    ap.add_argument("--call-s", type=float, default=0.05)
    ap.add_argument("--bounds", default="16,64,1000", help="rollouts in flight, comma-separated")
    args = ap.parse_args()
    print(f"agentic PDR: {args.instances} instances x {args.rollouts} rollouts x {args.rounds} rounds, "
          f"K={args.select_k}, G=2, V={args.votes}; rollout {args.rollout_s}s, judge/summary call {args.call_s}s")
    head = (f"{'in flight':>9} {'rollouts':>8} {'stages s':>8} {'B-bound s':>9} {'ideal s':>7} {'wall s':>7} "
            f"{'wall/ideal':>10} {'judge calls':>17} {'summary calls':>15} {'calls':>6} {'CPU s':>6} "
            f"{'CPU ms/call':>11}")
    print(head)
    print("-" * len(head))
    for bound in (int(b) for b in args.bounds.split(",")):
        r = asyncio.run(one_setting(args, bound))
        print(f"{r['bound']:>9} {r['rollouts']:>8} {r['stages_s']:>8.2f} {r['bound_s']:>9.2f} {r['ideal_s']:>7.2f} "
              f"{r['wall_s']:>7.2f} {r['ratio']:>10.2f} {r['judge']:>7} (formula {r['judge_formula']:>4}) "
              f"{r['summary']:>4} (formula {r['summary_formula']:>3}) {r['backend_calls']:>6} {r['cpu_s']:>6.2f} "
              f"{1000 * r['cpu_s'] / r['backend_calls']:>11.2f}")


if __name__ == "__main__":
    main()

"""The cap drill: does a budget cap hold at the server, with many calls in flight?

    python benchmarks/caps.py [--tasks 64] [--n 16] [--max-tokens 64] [--no-compare]

Starts ../shared/bench/simserver.py on a free port (its own token counts, /stats) and runs
self-consistency@n on `tasks` arithmetic tasks, all in flight, under one cap at a time (max_cost
at gpt-4o-mini's list price from litellm's table, max_tokens_total, max_calls) and 1, 16 and 64
calls in flight. Per row: the cap, what the server served in the cap's unit, the overshoot (must
be 0), tasks with an answer / tasks with an answered call, and whether the results' tokens and
calls add up exactly to the server's count. `--compare` (default) adds the overshoot of the old
rule (caps checked against answered calls only, no reservation), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim import simserver, stats

CAPS = {"max_cost": 0.002, "max_tokens_total": 20000, "max_calls": 150}


def reset(base: str) -> None:
    req = urllib.request.Request(base.removesuffix("/v1") + "/reset", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=5):
        pass


def fmt(kind: str, x: float) -> str:
    return f"${x:.6f}" if kind == "max_cost" else f"{int(x):,}"


async def main(args: argparse.Namespace) -> None:
    from tts.testing.drill import cap_drill
    from tts.wrappers.accounting import AccountingBackend

    reserve = AccountingBackend.worst_case
    print(f"self-consistency@{args.n}, {args.tasks} tasks, max_tokens {args.max_tokens}, model prices: gpt-4o-mini "
          f"(litellm's table); server: simserver.py (its own /stats)")
    head = (f"{'cap kind':<17}{'in flight':>9}{'cap':>12}{'server spend':>14}{'overshoot':>11}{'answered':>10}"
            f"{'adds up':>9}{'wall s':>8}")
    if args.compare:
        head += f"{'old rule: spend':>17}{'overshoot':>11}"
    print(head)
    with simserver("--ttft", "0.01", "--tpot", "0.0002", "--out-tokens", str(args.max_tokens)) as base:
        for kind, cap in CAPS.items():
            for in_flight in (1, 16, 64):
                reset(base)
                started = time.perf_counter()
                out, _ = await cap_drill(kind, cap, in_flight, tasks=args.tasks, samples=args.n,
                                         max_tokens=args.max_tokens, server=(base, lambda: stats(base)))
                wall = time.perf_counter() - started
                line = (f"{kind:<17}{in_flight:>9}{fmt(kind, cap):>12}{fmt(kind, out.server_spend):>14}"
                        f"{fmt(kind, out.overshoot):>11}{f'{out.tasks_with_answer}/{out.answered_tasks}':>10}"
                        f"{'yes' if out.adds_up else 'NO':>9}{wall:>8.1f}")
                if args.compare:
                    reset(base)
                    AccountingBackend.worst_case = lambda self, request: (0, 0.0)  # the old rule
                    try:
                        old, _ = await cap_drill(kind, cap, in_flight, tasks=args.tasks, samples=args.n,
                                                 max_tokens=args.max_tokens, server=(base, lambda: stats(base)))
                    finally:
                        AccountingBackend.worst_case = reserve
                    line += f"{fmt(kind, old.server_spend):>17}{fmt(kind, old.overshoot):>11}"
                print(line, flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--no-compare", dest="compare", action="store_false")
    asyncio.run(main(ap.parse_args()))

#!/usr/bin/env python3
"""Latency is set by stages, not samples.

Against the loopback simulated server (fixed latency L per call, no per-token time) and enough
calls allowed in flight, each strategy's wall time should be about (its sequential stages) x L,
however many calls it makes. Prints, per strategy: stages, calls, ideal = stages x L, measured
wall, ratio (target <= 1.15).

    python benchmarks/stages.py [--latency 0.2] [--tasks 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SIMSERVER = Path(os.environ.get("TTS_SIMSERVER", Path(__file__).resolve().parents[2] / "shared/bench/simserver.py"))
if not SIMSERVER.is_file():
    SIMSERVER = Path("/work/shared/bench/simserver.py")


def strategies():
    from tts.selectors.judge import ListwiseJudge
    from tts.selectors.tournament import RTV
    from tts.selectors.verifier import Verifier
    from tts.strategies import (
        BestOfN,
        ParallelDistillRefine,
        SelfConsistency,
        SequentialRefinement,
        SingleSample,
        TournamentVoting,
    )

    pdr4 = ParallelDistillRefine(drafts=[4, 1])
    return [  # (label, strategy, sequential stages)
        ("single", SingleSample(), 1),
        ("self-consistency n=8", SelfConsistency(n=8), 1),
        ("best-of-8 + verifier", BestOfN(n=8, scorer=Verifier(check="answer")), 1),
        ("best-of-8 + listwise judge", BestOfN(n=8, selector=ListwiseJudge()), 2),
        ("sequential-refinement R=3", SequentialRefinement(rounds=3), 3),
        ("sequential-refinement R=3 + critique", SequentialRefinement(rounds=3, critique=True), 5),
        ("pdr [8,8,1] summary", ParallelDistillRefine(drafts=[8, 8, 1]), 5),  # draft,distill,draft,distill,draft
        ("pdr [8,8,1] random-k", ParallelDistillRefine(drafts=[8, 8, 1], distill="random-k"), 3),
        ("pdr [8,1] top-2 by RTV (G=2,V=4)",
         ParallelDistillRefine(drafts=[8, 1], distill="top-k", k=2, selector=RTV(votes=4)), 4),  # 8->4->2: 2 rounds
        ("rtv N=16 G=2 V=8", TournamentVoting(n=16, group_size=2, votes=8), 5),  # sample + 4 rounds
        ("rtv N=4 V=8 over pdr [4,1]", TournamentVoting(n=4, votes=8, generator=pdr4), 5),  # 3 + 2 rounds
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SIMSERVER), "--port", str(port), "--ttft", str(latency),
                             "--tpot", "0", "--out-tokens", "40"], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/stats", timeout=1).read()
            return proc, url + "/v1"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("simserver did not start")


async def measure(api_base: str, latency: float, n_tasks: int) -> list[tuple]:
    from tts.build import make_backend
    from tts.context import SamplingDefaults
    from tts.records import Task
    from tts.run import run_many

    backend = make_backend("sim", backend="openai", api_base=api_base, api_key="x", concurrency=4096, retries=2,
                           timeout=30)
    tasks = [Task(id=f"t{i}", prompt=f"What is {i % 9 + 1} + {(i * 7) % 9 + 1}?",
                  answer=str(i % 9 + 1 + (i * 7) % 9 + 1)) for i in range(n_tasks)]
    defaults = SamplingDefaults(temperature=0.7, max_tokens=40)
    rows = []
    try:
        # Warm up: open as many connections as the widest stage needs (RTV's first round), so the
        # table measures steady-state stages, not TCP connection setup.
        from tts.strategies import SelfConsistency

        await run_many(SelfConsistency(n=64 * n_tasks), tasks[:1], backend, defaults=defaults)
        for label, strat, stages in strategies():
            t0, c0 = time.perf_counter(), time.process_time()
            results = await run_many(strat, tasks, backend, defaults=defaults)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            bad = [r for r in results if r.status != "ok"]
            if bad:
                raise SystemExit(f"{label}: {bad[0].status}: {bad[0].error}")
            calls = sum(r.usage.calls for r in results)
            rows.append((label, stages, calls // n_tasks, stages * latency, wall, 1000 * cpu / calls))
    finally:
        await backend.aclose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2, help="server latency L per call, seconds")
    ap.add_argument("--tasks", default="1,4", help="tasks run concurrently per strategy (comma list: one table each)")
    args = ap.parse_args()
    proc, api_base = start_server(args.latency)
    try:
        for n_tasks in [int(x) for x in args.tasks.split(",")]:
            rows = asyncio.run(measure(api_base, args.latency, n_tasks))
            print(f"\nL = {args.latency:.3f} s per call, {n_tasks} task(s) in flight per strategy; "
                  f"target ratio <= 1.15 (load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
            print(f"{'strategy':40} {'stages':>6} {'calls/task':>10} {'ideal s':>8} {'wall s':>8} {'ratio':>6} "
                  f"{'cpu ms/call':>11}")
            worst = 0.0
            for label, stages, calls, ideal, wall, cpu_ms in rows:
                worst = max(worst, wall / ideal)
                print(f"{label:40} {stages:>6} {calls:>10} {ideal:>8.3f} {wall:>8.3f} {wall / ideal:>6.3f} "
                      f"{cpu_ms:>11.2f}")
            print(f"worst ratio {worst:.3f} ({'OK' if worst <= 1.15 else 'ABOVE TARGET'})")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()

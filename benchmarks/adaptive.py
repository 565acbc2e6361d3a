"""Early stopping of votes: full budget vs early stop 1.0 (lossless) vs 0.95 (posterior), side by side.

    python benchmarks/adaptive.py [--sim-tasks 100] [--rtv-tasks 30] [--local-tasks 8] [--no-local]

On the simulated server (../shared/bench/simserver.py) at --p-correct 0.4, 0.6, 0.8, and on the
embedded model (examples/arithmetic.jsonl, `--model local`): self-consistency n=16 and RTV N=16
V=8. Per row: accuracy, calls and tokens (the simulated server's /stats: the figures are checked
against our accounting, and a mismatch is printed), wall time, and for early stop the share of
tasks whose answer equals the full run's. No cache (unless --local-cache): every call is sent. Every sample is seeded
(seed + sample index), so each variant draws the same samples as the full run, and the lossless
row must give the full run's answers. The simulated judge names a random candidate, so RTV's
contests there are close to coin flips: early stop saves little on them by design.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import simserver, stats

import tts
from tts.wrappers import AccountingBackend
from tts.wrappers.cache import CacheBackend

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = [("full", None), ("early 1.0", 1.0), ("early 0.95", 0.95)]


def sums(n: int) -> list[tts.Task]:
    return [tts.Task(id=f"s{i}", prompt=f"What is {3 + i % 41} + {5 + (7 * i) % 53}?",
                     answer=str(3 + i % 41 + 5 + (7 * i) % 53)) for i in range(n)]


def strategies(fmt: str, rtv_n: int, rtv_v: int, sc_n: int) -> dict[str, object]:
    return {
        f"SC n={sc_n}": lambda es: tts.SelfConsistency(n=sc_n, early_stop=es, answer_format=fmt,
                                                       generator=tts.SingleSample(answer_format=fmt)),
        f"RTV N={rtv_n} V={rtv_v}": lambda es: tts.TournamentVoting(
            n=rtv_n, votes=rtv_v, early_stop=es, answer_format=fmt, generator=tts.SingleSample(answer_format=fmt)),
    }


async def run_variant(make_strategy, tasks, backend, defaults, base: str | None):
    if base is not None:
        urllib.request.urlopen(urllib.request.Request(base.removesuffix("/v1") + "/reset", method="POST"), timeout=5)
    acct = backend.find(AccountingBackend)
    cache = backend.find(CacheBackend)
    before, missed = acct.usage, cache.misses if cache else 0
    started = time.perf_counter()
    results = await tts.run_many(make_strategy, tasks, backend, defaults=defaults)
    wall = time.perf_counter() - started
    used = acct.usage
    calls, tokens = used.calls - before.calls, used.total_tokens - before.total_tokens
    note = ""
    if cache:  # what each variant consumed (a cached answer counts as the call that made it)
        calls = sum(r.usage.calls for r in results)
        tokens = sum(r.usage.total_tokens for r in results)
        note = f"  ({cache.misses - missed} sent, the rest from the cache)"
    if base is not None:
        s = stats(base)
        if (s["ok"], s["prompt_tokens"] + s["completion_tokens"]) != (calls, tokens):
            note = f"  MISMATCH vs /stats: {s['ok']} calls, {s['prompt_tokens'] + s['completion_tokens']} tokens"
    return results, calls, tokens, wall, note


async def table(title: str, tasks_by_strategy, backend, defaults, base: str | None, fmt: str, args) -> None:
    await tts.run_many(tts.SingleSample(), tasks_by_strategy("SC")[:1], backend, defaults=defaults)  # warm up
    print(f"\n## {title}")
    print(f"{'strategy':<16} {'variant':<11} {'tasks':>5} {'accuracy':>8} {'calls':>7} {'calls/full':>10} "
          f"{'tokens':>9} {'wall s':>7} {'same answer':>11}")
    for name, make in strategies(fmt, args.rtv_n, args.rtv_v, args.sc_n).items():
        tasks = tasks_by_strategy(name)
        if not tasks:
            continue
        full = None
        for label, es in VARIANTS:
            results, calls, tokens, wall, note = await run_variant(make(es), tasks, backend, defaults, base)
            acc = sum(bool(r.correct) for r in results) / len(results)
            if full is None:
                full = (results, calls)
                same, ratio = "", 1.0
            else:
                same = f"{sum(a.answer == b.answer for a, b in zip(results, full[0], strict=True)) / len(results):.2f}"
                ratio = calls / max(1, full[1])
            print(f"{name:<16} {label:<11} {len(tasks):>5} {acc:>8.3f} {calls:>7} {ratio:>10.2f} {tokens:>9} "
                  f"{wall:>7.1f} {same:>11}{note}", flush=True)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim-tasks", type=int, default=100, help="tasks for self-consistency on the simulated server")
    p.add_argument("--rtv-tasks", type=int, default=30, help="tasks for RTV on the simulated server")
    p.add_argument("--local-tasks", type=int, default=30, help="tasks of examples/arithmetic.jsonl on the local model")
    p.add_argument("--no-local", action="store_true", help="skip the embedded model")
    p.add_argument("--no-sim", action="store_true", help="skip the simulated server")
    p.add_argument("--local-rtv", default="16,8,30", help="on the local model, RTV's N,V and tasks (0 tasks: "
                   "skip; it is slow: a second or more a call on 2 shared cores)")
    p.add_argument("--local-cache", metavar="DIR", help="on the local model, a call cache shared by the variants "
                   "(a rerun is free; an early-stop row then sends only what the full row did not, so its wall "
                   "time is not its own: the `sent` note says how many calls it sent)")
    p.add_argument("--p-correct", default="0.4,0.6,0.8")
    p.add_argument("--sc-n", type=int, default=16)
    p.add_argument("--rtv-n", type=int, default=16)
    p.add_argument("--rtv-v", type=int, default=8)
    p.add_argument("--ttft", default="0.05", help="simulated server latency per call, seconds")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    cache = f"local cache {args.local_cache}" if args.local_cache else "no cache"
    print(f"seed {args.seed}; wave: auto (the fewest further votes that could decide); {cache}; "
          f"2 shared cores, so wall times are noisy: compare within one table")
    for pc in [x for x in args.p_correct.split(",") if x.strip() and not args.no_sim]:
        with simserver("--p-correct", pc, "--ttft", args.ttft, "--out-tokens", "24") as base:
            backend = tts.make_backend("sim", backend="openai", api_base=base, cache_dir=None, retries=2,
                                       concurrency=256)
            defaults = tts.SamplingDefaults(seed=args.seed, max_tokens=24)
            try:
                await table(f"simulated server, --p-correct {pc}",
                            lambda name: sums(args.sim_tasks if name.startswith("SC") else args.rtv_tasks),
                            backend, defaults, base, "auto", args)
            finally:
                await backend.aclose()
    if args.no_local:
        return
    lines = (ROOT / "examples" / "arithmetic.jsonl").read_text().splitlines()
    tasks = [tts.Task(**json.loads(line)) for line in lines if line.strip()][:args.local_tasks]
    backend = tts.make_backend("local", cache_dir=args.local_cache)
    defaults = tts.SamplingDefaults(seed=args.seed, max_tokens=48, temperature=0.7)
    args.rtv_n, args.rtv_v, rtv_tasks = (int(x) for x in args.local_rtv.split(","))
    try:
        await table(f"embedded SmolLM2-135M (--model local), examples/arithmetic.jsonl: SC on the first {len(tasks)} "
                    f"tasks, RTV on the first {rtv_tasks}",
                    lambda name: tasks if name.startswith("SC") else tasks[:rtv_tasks], backend, defaults, None,
                    "last-number", args)
    finally:
        await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main())

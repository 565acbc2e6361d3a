"""Single-sample tasks under a fault mix: does every task get answered, and is any call paid twice?

    python benchmarks/faults.py [--tasks 1000] [--backend openai|litellm|both] [--ttft 0.1]

Starts ../shared/bench/simserver.py on a free port with 10% 429 (Retry-After: 1) + 10% 500 +
2% hung (3 s, then 504) + 2% malformed bodies, and runs `tasks` single-sample tasks through
`make_backend` with its default settings (64 in flight, 8 retries, 120 s per-call timeout) and a
fresh cache directory. "Paid twice" is the server's own count of requests whose exact body it
had already answered successfully.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim import simserver, stats

FAULTS = ("--p429", "0.10", "--p500", "0.10", "--phang", "0.02", "--hang-s", "3", "--pmalformed", "0.02")


async def run(kind: str, base: str, tasks: int, cache_dir: str) -> dict:
    from tts.build import make_backend
    from tts.records import Task
    from tts.run import run_many
    from tts.strategies.single import SingleSample
    from tts.wrappers import RetryBackend

    if kind == "openai":
        backend = make_backend("sim", backend="openai", api_base=base, cache_dir=cache_dir)
    else:
        backend = make_backend("openai/sim", backend="litellm", api_base=base, api_key="sk-bench", cache_dir=cache_dir)
    batch = [Task(id=f"{kind}{i}", prompt=f"[{kind} {i}] What is {i % 10} + {(i * 3) % 10}?") for i in range(tasks)]
    before = stats(base)
    started = time.perf_counter()
    results = await run_many(SingleSample(), batch, backend)
    wall = time.perf_counter() - started
    after = stats(base)
    await backend.aclose()
    retry = backend.find(RetryBackend)
    return {
        "path": f"tts {kind}",
        "answered": sum(r.status == "ok" for r in results),
        "retries": retry.retries,
        "paid_twice": after["repeats_of_completed"] - before["repeats_of_completed"],
        "requests": after["requests"] - before["requests"],
        "faults": {k: after[k] - before[k] for k in ("e429", "e500", "hung", "malformed")},
        "wall": wall,
        "errors": sorted({r.error for r in results if r.error})[:3],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--backend", choices=["openai", "litellm", "both"], default="openai")
    ap.add_argument("--ttft", type=float, default=0.1)
    args = ap.parse_args()
    kinds = ["openai", "litellm"] if args.backend == "both" else [args.backend]
    rows = []
    with simserver("--ttft", str(args.ttft), *FAULTS) as base, tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            rows.append(await run(kind, base, args.tasks, str(Path(tmp, kind))))
    print(f"{args.tasks} single-sample tasks, server latency {args.ttft} s, faults: 10% 429 (Retry-After 1), "
          f"10% 500, 2% hung 3 s, 2% malformed; make_backend defaults")
    print(f"{'path':<14}{'answered':>10}{'retries':>9}{'paid twice':>12}{'requests':>10}{'wall s':>8}  faults served")
    for r in rows:
        f = r["faults"]
        print(f"{r['path']:<14}{r['answered']:>6}/{args.tasks:<4}{r['retries']:>8}{r['paid_twice']:>12}"
              f"{r['requests']:>10}{r['wall']:>8.1f}  429={f['e429']} 500={f['e500']} hung={f['hung']} "
              f"malformed={f['malformed']}")
        for e in r["errors"]:
            print(f"    error: {e}")


if __name__ == "__main__":
    asyncio.run(main())

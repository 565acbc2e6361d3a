"""DeepConf online against self-consistency: accuracy, completion tokens as the server counted them, wall time.

    python benchmarks/deepconf.py [--tasks 200] [--n 32] [--local-tasks 30] [--local-n 8] [--no-local]

On the simulated server (../shared/bench/simserver.py --p-correct 0.6 --out-tokens 400 --tpot 0.001,
which streams with logprobs and loses a wrong trace's confidence 20-60% into it): self-consistency
n=32 against DeepConf-low and DeepConf-high online at n=32 (`--deepconf low|high`, defaults
otherwise: window 2048 cut to a tenth of the warm-up's median length, warm-up n/8, tau 0.95).
Completion tokens are the server's /stats; ours (the results' usage) are printed beside them, with
the server's aborted streams and the traces the results say were stopped. Then the same on the
embedded model (`--model local`, examples/arithmetic.jsonl, n=8), as measured (no server counter
there: the tokens are our accounting). No cache: every call is sent.
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

import tts

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"low": "DeepConf-low: at most 40% of SC's server-counted completion tokens, accuracy at most 1 point lower",
           "high": "DeepConf-high: at most 70% of SC's server-counted completion tokens, accuracy no lower"}


def sums(n: int) -> list[tts.Task]:
    return [tts.Task(id=f"s{i}", prompt=f"What is {3 + i % 41} + {5 + (7 * i) % 53}?",
                     answer=str(3 + i % 41 + 5 + (7 * i) % 53)) for i in range(n)]


def settled(base: str) -> dict:
    for _ in range(500):
        s = stats(base)
        if s["in_flight"] == 0:
            return s
        time.sleep(0.02)
    return s


async def run_variant(strategy, tasks, backend, defaults, base: str | None) -> dict:
    if base is not None:
        urllib.request.urlopen(urllib.request.Request(base.removesuffix("/v1") + "/reset", method="POST"), timeout=5)
    started = time.perf_counter()
    results = await tts.run_many(strategy, tasks, backend, defaults=defaults)
    wall = time.perf_counter() - started
    out = {"acc": sum(bool(r.correct) for r in results) / len(results), "wall": wall,
           "ours": sum(r.usage.completion_tokens for r in results),
           "stopped": sum(len(r.metadata.get("deepconf", {}).get("stopped", [])) for r in results),
           "dropped": sum(len(r.metadata.get("deepconf", {}).get("dropped", [])) for r in results),
           "calls": sum(r.usage.calls for r in results), "errors": sum(r.status != "ok" for r in results)}
    if base is not None:
        s = settled(base)
        out.update(server=s["completion_tokens"], aborted=s["aborted_streams"], saved=s["stream_tokens_saved"])
    return out


def row(label: str, r: dict, base_tokens: int | None, key: str) -> str:
    tokens = r.get(key, r["ours"])
    ratio = f"{tokens / base_tokens:>6.1%}" if base_tokens else "     -"
    server = (f" {r['server']:>10,} {r['ours']:>10,} {r['aborted']:>8} {r['stopped']:>8}" if "server" in r
              else f" {'-':>10} {r['ours']:>10,} {'-':>8} {r['stopped']:>8}")
    return f"{label:<22} {r['acc']:>8.3f}{server} {ratio:>8} {r['wall']:>7.1f} {r['calls']:>6} {r['errors']:>4}"


HEADER = (f"{'strategy':<22} {'accuracy':>8} {'server tok':>10} {'our tok':>10} {'aborted':>8} {'stopped':>8} "
          f"{'vs SC':>8} {'wall s':>7} {'calls':>6} {'err':>4}")


async def table(title: str, tasks, backend, defaults, base: str | None, n: int, fmt: str) -> None:
    print(f"\n## {title}\n{HEADER}", flush=True)
    key = "server" if base is not None else "ours"
    sc = await run_variant(tts.SelfConsistency(n=n, answer_format=fmt), tasks, backend, defaults, base)
    print(row(f"self-consistency n={n}", sc, None, key), flush=True)
    for variant in ("low", "high"):
        r = await run_variant(tts.SelfConsistency(n=n, deepconf=variant, answer_format=fmt), tasks, backend,
                              defaults, base)
        print(row(f"DeepConf-{variant} n={n}", r, sc[key], key), flush=True)
        if base is not None:
            ratio, drop = r[key] / sc[key], (sc["acc"] - r["acc"]) * 100
            ok = ratio <= 0.40 and drop <= 1.0 if variant == "low" else ratio <= 0.70 and drop <= 0.0
            print(f"   target  {TARGETS[variant]}: {ratio:.1%} of the tokens, accuracy {-drop:+.1f} points: "
                  f"{'MET' if ok else 'NOT MET'}", flush=True)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--local-tasks", type=int, default=30)
    p.add_argument("--local-n", type=int, default=8)
    p.add_argument("--no-local", action="store_true")
    p.add_argument("--no-sim", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    print(f"seed {args.seed}; concurrency {args.concurrency}; no cache; 2 shared cores: wall times are noisy")
    if not args.no_sim:
        with simserver("--p-correct", "0.6", "--out-tokens", "400", "--tpot", "0.001") as base:
            backend = tts.make_backend("sim", backend="openai", api_base=base, retries=2,
                                       concurrency=args.concurrency)
            try:
                await table(f"simulated server --p-correct 0.6 --out-tokens 400 --tpot 0.001, {args.tasks} sums",
                            sums(args.tasks), backend, tts.SamplingDefaults(seed=args.seed, max_tokens=400),
                            base, args.n, "auto")
            finally:
                await backend.aclose()
    if args.no_local:
        return
    tasks = tts.load_tasks(ROOT / "examples" / "arithmetic.jsonl")[:args.local_tasks]
    backend = tts.make_backend("local")
    try:
        await table(f"embedded SmolLM2-135M (--model local), examples/arithmetic.jsonl, {len(tasks)} sums",
                    tasks, backend, tts.SamplingDefaults(seed=args.seed, max_tokens=48, temperature=0.7), None,
                    args.local_n, "last-number")
    finally:
        await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""Quality on the embedded model: the example arithmetic tasks under single sample,
self-consistency@8, best-of-8 with the programmatic verifier, PDR and RTV at comparable total
tokens. Prints accuracy, total tokens and wall time per strategy, whatever they are.

    python benchmarks/quality.py [--tasks 10] [--max-tokens 64] [--model local]

Identical requests are computed once (a memo under the accounting, so every strategy's tokens are
counted as if it ran alone): best-of-8 and single see the same seeded samples as
self-consistency@8. Wall time is each strategy's own, so a strategy that reuses memoized samples
shows less time than it would cost alone; the `calls` column counts every call it made.
The local server answers one request at a time, so wall time is roughly calls x per-call time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Memo:
    """Computes each distinct request once; replays it with its original usage (not marked cached)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.store: dict[str, asyncio.Future] = {}
        self.sent = 0

    async def complete(self, request):
        key = request.fingerprint("memo")
        fut = self.store.get(key)
        if fut is None:
            fut = self.store[key] = asyncio.get_running_loop().create_future()
            self.sent += 1
            try:
                fut.set_result(await self.inner.complete(request))
            except BaseException as exc:
                del self.store[key]
                fut.set_exception(exc)
                raise
        return await asyncio.shield(fut)

    async def aclose(self) -> None:
        await self.inner.aclose()


def strategies(kappa: int):
    import tts

    return [
        ("single", tts.SingleSample()),
        ("self-consistency@8", tts.SelfConsistency(n=8)),
        ("best-of-8, verifier = reference answer (ORACLE)", tts.BestOfN(n=8, scorer=tts.Verifier(check="answer"))),
        ("pdr drafts [4,1] summary", tts.ParallelDistillRefine(drafts=[4, 1], distill="summary", kappa=kappa)),
        ("pdr drafts [4,1] top-2 (majority)", tts.ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2,
                                                                         kappa=kappa)),
        ("rtv n=4 G=2 V=1", tts.TournamentVoting(n=4, group_size=2, votes=1)),
    ]


async def run(args) -> list[tuple]:
    import tts

    lines = (ROOT / "examples" / "arithmetic.jsonl").read_text().splitlines()
    tasks = [tts.Task(**json.loads(x)) for x in lines][: args.tasks]
    backend = Memo(tts.make_backend(args.model, cache_dir=None, timeout=600))
    defaults = tts.SamplingDefaults(temperature=0.7, max_tokens=args.max_tokens, seed=0)
    rows = []
    try:
        for label, strat in strategies(args.kappa):
            t0 = time.perf_counter()
            results = await tts.run_many(strat, tasks, backend, defaults=defaults)
            wall = time.perf_counter() - t0
            right = sum(bool(r.correct) for r in results)
            errors = sum(r.status != "ok" for r in results)
            rows.append((label, right, len(results), sum(r.usage.total_tokens for r in results),
                         sum(r.usage.calls for r in results), wall, errors))
            print(f"  done: {label}: {right}/{len(results)} right, {rows[-1][3]:,} tokens, {wall:.0f} s", flush=True)
    finally:
        await backend.aclose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local", help="model (default: the embedded SmolLM2-135M)")
    ap.add_argument("--tasks", type=int, default=10, help="first N tasks of examples/arithmetic.jsonl")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--kappa", type=int, default=128, help="PDR workspace bound, tokens")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = asyncio.run(run(args))
    print(f"\nmodel {args.model}, {args.tasks} tasks, max_tokens {args.max_tokens}, temperature 0.7, seed 0; "
          f"total {time.perf_counter() - t0:.0f} s")
    print(f"{'strategy':50} {'accuracy':>14} {'tokens':>9} {'calls':>6} {'wall s':>7}")
    for label, right, n, tokens, calls, wall, errors in rows:
        err = f"  ({errors} errors)" if errors else ""
        print(f"{label:50} {right:>3}/{n:<3} {right / n:>6.1%} {tokens:>9,} {calls:>6} {wall:>7.1f}{err}")
    print("ORACLE: the best-of-8 verifier compares with the reference answer, so it measures pass@8, "
          "not a deployable selector.")


if __name__ == "__main__":
    main()

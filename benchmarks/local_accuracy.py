"""Accuracy of the embedded SmolLM2-135M on the example sums: single sample, majority@N, pass@N.

    python benchmarks/local_accuracy.py [--n 8] [--tasks examples/arithmetic.jsonl] [--seed 0]

Every task gets N seeded samples (seed+i for sample i), so a rerun draws the same samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import tts
from tts.answers import is_correct

ROOT = Path(__file__).resolve().parent.parent


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=str(ROOT / "examples" / "arithmetic.jsonl"))
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.7)
    args = p.parse_args()
    tasks = [tts.Task(**json.loads(line)) for line in Path(args.tasks).read_text().splitlines() if line.strip()]
    backend = tts.make_backend("local")
    defaults = tts.SamplingDefaults(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)
    started = time.perf_counter()
    try:
        results = await tts.run_many(tts.SelfConsistency(n=args.n, answer_format="last-number"), tasks, backend,
                                     defaults=defaults)
    finally:
        await backend.aclose()
    wall = time.perf_counter() - started
    by_id = {t.id: t for t in tasks}
    samples = [is_correct(c.answer, by_id[r.task_id].answer) for r in results for c in r.candidates]
    single = sum(bool(s) for s in samples) / len(samples)
    majority = sum(bool(r.correct) for r in results) / len(results)
    hit = [any(is_correct(c.answer, by_id[r.task_id].answer) for c in r.candidates) for r in results]
    pass_n = sum(hit) / len(results)
    tokens = sum(r.usage.completion_tokens for r in results)
    print(f"{len(tasks)} tasks x {args.n} samples, temperature {args.temperature}, max_tokens {args.max_tokens}, "
          f"seed {args.seed}, answer format last-number")
    print(f"{'single sample':>16} {'majority@' + str(args.n):>12} {'pass@' + str(args.n):>8} {'calls':>6} "
          f"{'tokens/sample':>14} {'wall s':>7}")
    print(f"{single:>16.3f} {majority:>12.3f} {pass_n:>8.3f} {len(samples):>6} {tokens / len(samples):>14.1f} "
          f"{wall:>7.0f}")


if __name__ == "__main__":
    asyncio.run(main())

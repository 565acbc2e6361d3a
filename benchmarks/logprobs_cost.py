#!/usr/bin/env python3
"""What asking for logprobs costs on the embedded model: the same seeded requests with and
without `logprobs=True, top_logprobs=1` (what `SequentialRefinement(accept="likelier")` sends),
alternated so that load drifts hit both alike. Prints ms per completion token each way and the
ratio; the tokens (the replies) are the same either way, only the time differs.

    python benchmarks/logprobs_cost.py [--calls 15] [--repeats 2] [--model local]
"""

from __future__ import annotations

import argparse
import asyncio
import time


async def timed(backend, calls: int, **params) -> tuple[float, int, list[str]]:
    import tts

    t0, tokens, texts = time.perf_counter(), 0, []
    for i in range(calls):
        prompt = f"What is {i % 9 + 1} + {i % 7 + 2}? Answer with just the number."
        req = tts.ChatRequest(messages=[{"role": "user", "content": prompt}], max_tokens=64, seed=100 + i,
                              temperature=0.7, **params)
        comp = (await backend.complete(req))[0]
        tokens += comp.usage.completion_tokens
        texts.append(comp.text)
    return time.perf_counter() - t0, tokens, texts


async def run(args) -> None:
    import tts

    backend = tts.make_backend(args.model, timeout=600)  # no cache: every call is computed
    try:
        await backend.complete(tts.ChatRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=4))
        plain = [0.0, 0]
        with_lp = [0.0, 0]
        same = True
        for _ in range(args.repeats):
            a = await timed(backend, args.calls)
            b = await timed(backend, args.calls, logprobs=True, top_logprobs=1)
            plain[0] += a[0]
            plain[1] += a[1]
            with_lp[0] += b[0]
            with_lp[1] += b[1]
            same = same and a[2] == b[2]
    finally:
        await backend.aclose()
    ms_plain, ms_lp = 1000 * plain[0] / plain[1], 1000 * with_lp[0] / with_lp[1]
    print(f"{args.model}: {args.calls * args.repeats} calls each way, {plain[1]} completion tokens without "
          f"logprobs, {with_lp[1]} with; same replies: {same}")
    print(f"  without logprobs {ms_plain:6.1f} ms/token")
    print(f"  with logprobs    {ms_lp:6.1f} ms/token   ratio {ms_lp / ms_plain:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local")
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=2)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()

"""Per-call overhead of the backend path, side by side, against a loopback server with fixed latency.

    python benchmarks/overhead.py [--calls 1024] [--in-flight 64] [--ttft 0.1]

Starts ../shared/bench/simserver.py on a free port and, in one run, sends the same workload through:
raw aiohttp, raw litellm.acompletion, tts's lean backend with every wrapper on (cache misses in a
fresh cache directory), tts's litellm backend with every wrapper on, and tts on cache hits. Prints
wall time / ideal (ideal = ceil(calls / in-flight) x latency) and CPU ms per call (this process's
CPU time; the server runs in another process). Each path first does one untimed warm-up round of
`in-flight` calls (imports, connections), so the table measures the steady state. The machine is
shared, so every path runs `--repeat` times, interleaved (the two litellm paths in alternating
order), and the table shows the medians. litellm does part of each call's work later, in its
logging worker (cost, callbacks): each litellm path's clock runs until that worker has drained,
so neither path is charged for the other's leftovers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim import simserver

MAX_TOKENS = 64
TEMPERATURE = 0.7


def prompt(tag: str, i: int) -> str:
    return f"[{tag} #{i}] What is {i % 10} + {(i * 7) % 10}? End with ANSWER: <number>."


async def timed(calls: int, fn: Callable[[int], Awaitable[object]], settle: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of `calls` calls; with `settle`, the clock also runs while litellm's
    logging worker finishes the work those calls queued, so each litellm path pays its own
    deferred work instead of leaving it to the path measured after it."""
    if settle:
        await flush_litellm_logging()  # what earlier paths left queued is not this path's cost
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(fn(i) for i in range(calls)))
    if settle:
        await flush_litellm_logging()
    return time.perf_counter() - wall0, time.process_time() - cpu0


async def flush_litellm_logging() -> None:
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except ImportError:
        return
    await GLOBAL_LOGGING_WORKER.flush()


async def bench_raw_aiohttp(base: str, calls: int, in_flight: int, tag: str) -> tuple[float, float]:
    import aiohttp

    sem = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(i: int, tag: str = tag) -> str:
            body = {"model": "sim", "messages": [{"role": "user", "content": prompt(tag, i)}],
                    "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS}
            async with sem, session.post(base + "/chat/completions", json=body) as r:
                return (await r.json())["choices"][0]["message"]["content"]

        await timed(in_flight, lambda i: one(i, tag + "-warm"))
        return await timed(calls, one)


async def bench_raw_litellm(base: str, calls: int, in_flight: int, tag: str) -> tuple[float, float]:
    from tts._litellm import import_litellm

    litellm = import_litellm()
    sem = asyncio.Semaphore(in_flight)

    async def one(i: int, tag: str = tag) -> str:
        async with sem:
            r = await litellm.acompletion(model="openai/sim", api_base=base, api_key="sk-bench",
                                          messages=[{"role": "user", "content": prompt(tag, i)}],
                                          temperature=TEMPERATURE, max_tokens=MAX_TOKENS)
            return r.choices[0].message.content

    await timed(in_flight, lambda i: one(i, tag + "-warm"), settle=True)
    return await timed(calls, one, settle=True)


async def bench_tts(backend, calls: int, in_flight: int, tag: str, warm: bool = True,
                    settle: bool = False) -> tuple[float, float]:
    from tts.records import Message
    from tts.seam import ChatRequest

    async def one(i: int, tag: str = tag) -> str:
        req = ChatRequest(messages=[Message(role="user", content=prompt(tag, i))], temperature=TEMPERATURE,
                          max_tokens=MAX_TOKENS)
        return (await backend.complete(req))[0].text

    if warm:
        await timed(in_flight, lambda i: one(i, tag + "-warm"), settle=settle)
    return await timed(calls, one, settle=settle)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1024)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--ttft", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of every path; the table shows the median")
    args = ap.parse_args()

    from tts.build import make_backend
    from tts.wrappers import AccountingBackend, CacheBackend

    ideal = math.ceil(args.calls / args.in_flight) * args.ttft
    runs: dict[str, list[tuple[float, float]]] = {}
    with simserver("--ttft", str(args.ttft)) as base, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            # Fastest paths first: litellm leaves logging work running in the loop after its calls.
            runs.setdefault("raw aiohttp", []).append(
                await bench_raw_aiohttp(base, args.calls, args.in_flight, f"raw-aiohttp{r}"))
            lean = make_backend("sim", backend="openai", api_base=base, api_key="sk-bench",
                                cache_dir=Path(tmp, f"lean{r}"), concurrency=args.in_flight)
            runs.setdefault("tts lean + all wrappers (misses)", []).append(
                await bench_tts(lean, args.calls, args.in_flight, f"lean{r}"))
            runs.setdefault("tts cache hits", []).append(
                await bench_tts(lean, args.calls, args.in_flight, f"lean{r}", warm=False))
            cache = lean.find(CacheBackend)
            usage = lean.find(AccountingBackend).usage
            await lean.aclose()
            viall = make_backend("openai/sim", backend="litellm", api_base=base, api_key="sk-bench",
                                 cache_dir=Path(tmp, f"litellm{r}"), concurrency=args.in_flight)
            litellm_paths = [
                ("raw litellm.acompletion",
                 lambda r=r: bench_raw_litellm(base, args.calls, args.in_flight, f"raw-ll{r}")),
                ("tts litellm + all wrappers (misses)",
                 lambda r=r, b=viall: bench_tts(b, args.calls, args.in_flight, f"ll{r}", settle=True)),
            ]
            for name, bench in litellm_paths[::1 if r % 2 == 0 else -1]:  # alternate which goes first
                runs.setdefault(name, []).append(await bench())
            await viall.aclose()

    print(f"{args.calls} calls, {args.in_flight} in flight, server latency {args.ttft} s, ideal {ideal:.2f} s; "
          f"median of {args.repeat} run(s), each after a warm-up round")
    print(f"{'path':<38}{'wall s':>8}{'wall/ideal':>12}{'CPU ms/call':>13}   all runs (CPU ms/call)")
    med: dict[str, tuple[float, float]] = {}
    for name, samples in runs.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples) / args.calls * 1000
        med[name] = (wall / ideal, cpu)
        every = " ".join(f"{c / args.calls * 1000:.3f}" for _, c in samples)
        print(f"{name:<38}{wall:>8.2f}{wall / ideal:>11.2f}x{cpu:>13.3f}   {every}")
    lean_ratio, lean_cpu = med["tts lean + all wrappers (misses)"]
    print()
    print(f"targets: lean CPU <= 1.5x raw aiohttp's: {lean_cpu:.3f} ms = {lean_cpu / med['raw aiohttp'][1]:.2f}x "
          f"(wall/ideal {lean_ratio:.2f}x against raw aiohttp's {med['raw aiohttp'][0]:.2f}x)")
    print(f"         litellm path <= 1.10x raw litellm CPU: "
          f"{med['tts litellm + all wrappers (misses)'][1] / med['raw litellm.acompletion'][1]:.2f}x")
    print(f"         cache hit < 0.1 ms: {med['tts cache hits'][1]:.3f} ms")
    print(f"last lean run: cache hits={cache.hits} misses={cache.misses}; accounting {json.dumps(usage.model_dump())}")


if __name__ == "__main__":
    asyncio.run(main())

"""Latency-bound and CPU-bound shapes side by side with raw aiohttp, against the loopback simserver.

    python benchmarks/scale.py [--only rtv,many,queue] [--rounds 3]

- rtv: TournamentVoting N=16, G=2, V=8 on one task (136 calls in five waves of 16, 64, 32, 16,
  8) at 0.05 s latency, against raw aiohttp sending the same five waves one after another. The
  figure is the span the server saw (first request in to last answer out, from its /stats).
  Also `tts run` in a fresh process (the CLI's defaults and --seed 0, so the 16 samples differ;
  an empty cache of its own): no warm-up, its first wave is its first call; and raw aiohttp cold
  (a fresh process sending the five waves with no warm-up wave, so it opens its connections inside
  the span, as `tts run` does).
- many: 2,000 tasks x self-consistency n=16 (32,000 calls) at 256 in flight and 0.05 s latency,
  against raw aiohttp sending 32,000 calls at 256 in flight: served span against the ideal
  (ceil(calls / in-flight) x latency), calls per second, client CPU per call, peak RSS.
- queue: 100,000 calls (6,250 tasks x n=16, 1,024 in flight, 0.05 s latency) through run_many,
  with and without call records in the results, and all queued at once (a gather of run_task):
  peak RSS.

`--baseline DIR` (rtv) also runs the two tts rows from another checkout of tts (e.g. `git
worktree add /tmp/base main`), alternating with this tree's: a change before and after in one run.

Each run is its own process (imports and a warm-up off the clock; peak RSS is that process's);
runs alternate for `--rounds` rounds and the tables show medians. Every run's count of calls is
checked against the server's /stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _sim import simserver, stats  # noqa: E402

WAVES = [16, 64, 32, 16, 8]


def reset(base: str) -> None:
    urllib.request.urlopen(urllib.request.Request(base.removesuffix("/v1") + "/reset", method="POST"), timeout=5)


def served(base: str) -> tuple[int, float]:
    s = stats(base)
    return s["ok"], (s["t_last"] - s["t_first"]) if s["ok"] else 0.0


def lean(base: str, in_flight: int):
    from tts.build import make_backend

    return make_backend("sim", backend="openai", api_base=base, api_key="sk-bench", concurrency=in_flight)


def raw_session(in_flight: int):
    import aiohttp

    sem = asyncio.Semaphore(in_flight)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def one(base: str, text: str) -> str:
        body = {"model": "sim", "messages": [{"role": "user", "content": text}], "temperature": 0.7, "max_tokens": 64}
        async with sem, session.post(base + "/chat/completions", json=body) as r:
            return (await r.json())["choices"][0]["message"]["content"]

    return session, one


# -- workers (one process each) ------------------------------------------------------------------------
async def rtv_tts(base: str, a: argparse.Namespace) -> dict:
    from tts.records import Task
    from tts.run import run_task
    from tts.strategies.rtv import TournamentVoting

    backend = lean(base, 64)
    rtv = TournamentVoting(n=16, group_size=2, votes=8)
    await run_task(rtv, Task(id="warm", prompt=f"[{a.tag}-warm] What is 2 + 5?"), backend)
    reset(base)
    cpu0 = time.process_time()
    await run_task(rtv, Task(id="t", prompt=f"[{a.tag}] What is 3 + 4?"), backend)
    cpu = time.process_time() - cpu0
    await backend.aclose()
    ok, span = served(base)
    return {"calls": ok, "span": span, "cpu": cpu}


async def rtv_raw(base: str, a: argparse.Namespace) -> dict:
    session, one = raw_session(64)
    if not a.cold:  # warm: its 64 connections are opened (and aiohttp's first-use work done) off the clock
        await asyncio.gather(*(one(base, f"[{a.tag}-warm] {i}") for i in range(64)))
    reset(base)
    cpu0 = time.process_time()
    for w, size in enumerate(WAVES):
        await asyncio.gather(*(one(base, f"[{a.tag} wave {w} #{i}] Candidate 1: 7. Candidate 2: 8. Which is right?")
                               for i in range(size)))
    cpu = time.process_time() - cpu0
    await session.close()
    ok, span = served(base)
    return {"calls": ok, "span": span, "cpu": cpu}


async def many_tts(base: str, a: argparse.Namespace) -> dict:
    from tts.records import Task
    from tts.run import run_many, run_task
    from tts.strategies.self_consistency import SelfConsistency

    backend = lean(base, a.in_flight)
    sc = SelfConsistency(n=16)
    tasks = [Task(id=f"t{i}", prompt=f"[{a.tag} {i}] What is {i % 10} + {i % 7}?") for i in range(a.tasks)]
    await run_many(sc, [Task(id=f"w{i}", prompt=f"[{a.tag}-warm {i}] 1 + 1?") for i in range(16)], backend)
    reset(base)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if a.all:  # every task, and so every call, queued at once (run_many would start them as slots free)
        res = await asyncio.gather(*(run_task(sc, t, backend, trace=a.trace) for t in tasks))
    else:
        res = await run_many(sc, tasks, backend, trace=a.trace)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await backend.aclose()
    ok, span = served(base)
    assert sum(r.usage.calls for r in res) == ok, "the results' calls differ from the server's count"
    return {"calls": ok, "span": span, "cpu": cpu, "wall": wall, "records": sum(len(r.trace) for r in res)}


async def many_raw(base: str, a: argparse.Namespace) -> dict:
    session, one = raw_session(a.in_flight)
    await asyncio.gather(*(one(base, f"[{a.tag}-warm] {i}") for i in range(256)))
    reset(base)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(base, f"[{a.tag} {i // 16}] What is {i % 10} + {i % 7}?") for i in range(a.tasks * 16)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await session.close()
    ok, span = served(base)
    return {"calls": ok, "span": span, "cpu": cpu, "wall": wall}


WORKERS = {"rtv-tts": rtv_tts, "rtv-raw": rtv_raw, "rtv-raw-cold": rtv_raw, "many-tts": many_tts, "many-raw": many_raw}


def rtv_cli(base: str, tag: str, tree: Path = HERE.parent) -> dict:
    """`tts run --strategy rtv --n 16 --group-size 2 --votes 8` in a fresh process: the served span."""
    import os
    import tempfile

    reset(base)
    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp) / "t.jsonl"
        task.write_text(json.dumps({"id": "t", "prompt": f"[{tag}] What is 3 + 4?"}) + "\n")
        cmd = [sys.executable, "-m", "tts.cli.main", "run", str(task), "--model", "sim", "--backend", "openai",
               "--api-base", base, "--api-key", "sk-bench", "--strategy", "rtv", "--n", "16", "--group-size", "2",
               "--votes", "8", "--seed", "0", "--cache-dir", str(Path(tmp) / "cache"), "--quiet",
               "--out", str(Path(tmp) / "out.jsonl")]
        env = dict(os.environ, PYTHONPATH=str(tree))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"tts run failed: {proc.stderr[-2000:]}")
    ok, span = served(base)
    return {"calls": ok, "span": span}


def worker_main(a: argparse.Namespace) -> None:
    out = asyncio.run(WORKERS[a.worker](a.base, a))
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def run(worker: str, base: str, tag: str, *extra: str, tree: Path | None = None) -> dict:
    if worker.endswith("-cold"):
        extra = ("--cold", *extra)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--base", base, "--tag", tag, *extra]
    env = None if tree is None else dict(__import__("os").environ, PYTHONPATH=str(tree))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{worker} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line.removeprefix("RESULT "))


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="rtv,many,queue")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="t", help=argparse.SUPPRESS)
    ap.add_argument("--tasks", type=int, default=2000, help=argparse.SUPPRESS)
    ap.add_argument("--in-flight", type=int, default=256, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action=argparse.BooleanOptionalAction, default=True, help=argparse.SUPPRESS)
    ap.add_argument("--all", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", type=Path, help="rtv: also run the tts rows from this checkout of tts")
    a = ap.parse_args()
    if a.worker:
        return worker_main(a)
    only = set(a.only.split(","))
    with simserver("--ttft", "0.05") as base:
        if "rtv" in only:
            runs: dict[str, list[dict]] = {"rtv-raw": [], "rtv-raw-cold": [], "rtv-tts": [], "rtv-cli": []}
            if a.baseline is not None:
                runs.update({"rtv-tts@base": [], "rtv-cli@base": []})
            for r in range(a.rounds):
                for w in (runs if r % 2 == 0 else reversed(list(runs))):
                    tree = a.baseline if w.endswith("@base") else None
                    runs[w].append(rtv_cli(base, f"{w}{r}", tree or HERE.parent) if w.startswith("rtv-cli")
                                   else run(w.removesuffix("@base"), base, f"{w}{r}", tree=tree))
            for w, rs in runs.items():
                assert all(x["calls"] == 136 for x in rs), f"{w}: the server did not serve 136 calls: {rs}"
            raw, tts = med(runs["rtv-raw"], "span"), med(runs["rtv-tts"], "span")
            raw_cold = med(runs["rtv-raw-cold"], "span")
            print(f"RTV N=16 G=2 V=8, one task, 136 calls in waves {WAVES}, 0.05 s latency; medians of {a.rounds}")
            print("| client | served span | x raw aiohttp | all rounds (s) |")
            print("|---|---|---|---|")
            for w, label in (("rtv-raw", "raw aiohttp, five waves (warmed up)"),
                             ("rtv-raw-cold", "raw aiohttp, five waves, cold process"),
                             ("rtv-tts", "tts TournamentVoting (warmed up)"), ("rtv-cli", "`tts run`, cold process"),
                             ("rtv-tts@base", "baseline: tts TournamentVoting (warmed up)"),
                             ("rtv-cli@base", "baseline: `tts run`, cold process")):
                if w not in runs:
                    continue
                span = med(runs[w], "span")
                every = " ".join(f"{x['span']:.3f}" for x in runs[w])
                print(f"| {label} | {span:.3f} s | {span / raw:.2f}x | {every} |")
            cli = med(runs["rtv-cli"], "span")
            print(f"(ideal: 5 waves x 0.05 s = 0.250 s; tts/raw = {tts / raw:.2f}x)")
            print(f"target: `tts run` served span <= 1.10x raw aiohttp's five waves (warmed up): {cli / raw:.2f}x "
                  f"({'met' if cli / raw <= 1.10 else 'NOT met'})")
            print(f"cold against cold: `tts run` <= 1.10x raw aiohttp in a cold process: {cli / raw_cold:.2f}x "
                  f"({'met' if cli / raw_cold <= 1.10 else 'NOT met'})\n")
        if "many" in only:
            calls = 32000
            ideal = math.ceil(calls / 256) * 0.05
            runs = {"many-raw": [], "many-tts": []}
            for r in range(a.rounds):
                for w in (runs if r % 2 == 0 else reversed(list(runs))):
                    runs[w].append(run(w, base, f"{w}{r}"))
            for w, rs in runs.items():
                assert all(x["calls"] == calls for x in rs), f"{w}: the server did not serve {calls} calls: {rs}"
            print(f"2,000 tasks x self-consistency n=16 = {calls:,} calls, 256 in flight, 0.05 s latency, ideal "
                  f"{ideal:.2f} s; medians of {a.rounds}")
            print("| client | served span | span / ideal | calls/s | x raw calls/s | client CPU per call | peak RSS |")
            print("|---|---|---|---|---|---|---|")
            raw_rate = calls / med(runs["many-raw"], "span")
            for w, label in (("many-raw", "raw aiohttp, 32,000 calls"), ("many-tts", "tts run_many")):
                span = med(runs[w], "span")
                print(f"| {label} | {span:.2f} s | {span / ideal:.2f}x | {calls / span:,.0f} | "
                      f"{calls / span / raw_rate:.0%} | {med(runs[w], 'cpu') / calls * 1000:.3f} ms | "
                      f"{med(runs[w], 'rss_mb'):.0f} MB |")
            print()
        if "queue" in only:
            print("100,000 calls: 6,250 tasks x self-consistency n=16, 1,024 in flight, 0.05 s latency")
            print("| how | calls served | call records kept | wall | client CPU per call | peak RSS |")
            print("|---|---|---|---|---|---|")
            for how, extra in (("run_many, trace=False (answers and totals)", ["--no-trace"]),
                               ("run_many, trace=True (the default: every call record)", ["--trace"]),
                               ("all queued at once (a gather of run_task, trace=False)", ["--no-trace", "--all"])):
                x = run("many-tts", base, f"queue{len(extra)}{extra[0]}", "--tasks", "6250", "--in-flight", "1024",
                        *extra)
                assert x["calls"] == 100000, x
                print(f"| {how} | {x['calls']:,} | {x['records']:,} | {x['wall']:.1f} s | "
                      f"{x['cpu'] / 1e5 * 1000:.3f} ms | {x['rss_mb']:.0f} MB |")


if __name__ == "__main__":
    main()

"""The peers' self-consistency workload through its_hub, DSPy, raw litellm, raw aiohttp and tts, side by side.

    python benchmarks/peers.py [--rounds 3] [--problems 64] [--samples 16] [--in-flight 64] [--ttft 0.1]

Each problem gets `samples` answers at temperature 0.7 and a majority vote, with at most
`in-flight` calls at once, against ../shared/bench/simserver.py on loopback (fixed latency).
Every system runs in its own process, twice per round: WARM (imports, client set-up and one
untimed warm-up wave of `in-flight` calls before the clock starts) and COLD (imports and client
set-up before the clock, no warm-up: what `tts run` or a notebook's first cell gets). `tts` is
the README quickstart's configuration (`run_many` with its defaults, trace on); `tts-notrace`
is the same with `trace=False`. The peers (its_hub, DSPy, litellm) live in a
separate venv that this script makes on first use (default ~/.cache/tts-bench/venv, outside
git); tts runs in this interpreter. The systems run in alternating order for `rounds` rounds and
the table shows medians: wall / ideal (ideal = ceil(calls / in-flight) x latency) and the client's
CPU per call (the worker's own CPU time, all its threads). Every run is checked against the
server's /stats: the calls it served must be exactly the warm-up plus the workload.

`--baseline DIR` adds the system `tts@base`: tts from another checkout (e.g. `git worktree add
/tmp/base main`), run alternating with this tree's, to measure a change before and after in one run.

`--occupancy` adds one more, untimed, round per system in which this process polls the server's
`in_flight` every 10 ms: the mean share of the slots busy over the run, and the share of 10 ms
ticks with every slot busy.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _sim import simserver, stats  # noqa: E402

PEERS = ["its_hub[lm]==1.2.0", "dspy==3.4.1", "litellm>=1.106,<1.107", "aiohttp>=3.9"]
SYSTEMS = ["raw-aiohttp", "its_hub", "tts", "tts-notrace", "dspy", "raw-litellm"]
MAX_TOKENS = 64
TEMPERATURE = 0.7


def prompt(tag: str, p: int) -> str:
    return f"[{tag} problem {p}] What is {p % 10} + {(p * 7) % 10}? End with ANSWER: <number>."


def answer_of(text: str) -> str | None:
    for line in reversed((text or "").splitlines()):
        if line.startswith("ANSWER:"):
            return line.split(":", 1)[1].strip()
    return None


def majority(texts: list[str]) -> str | None:
    counts = collections.Counter(a for a in map(answer_of, texts) if a is not None)
    return counts.most_common(1)[0][0] if counts else None


# -- workers: each builds its client, warms up, then times the workload ----------------------------
async def worker_raw_aiohttp(base: str, a: argparse.Namespace):
    import aiohttp

    sem = asyncio.Semaphore(a.in_flight)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def one(text: str) -> str:
        body = {"model": "sim", "messages": [{"role": "user", "content": text}], "temperature": TEMPERATURE,
                "max_tokens": MAX_TOKENS}
        async with sem, session.post(base + "/chat/completions", json=body) as r:
            return (await r.json())["choices"][0]["message"]["content"]

    async def problem(text: str) -> str | None:
        return majority(list(await asyncio.gather(*(one(text) for _ in range(a.samples)))))

    return problem, session.close


async def worker_raw_litellm(base: str, a: argparse.Namespace):
    import litellm

    sem = asyncio.Semaphore(a.in_flight)

    async def one(text: str) -> str:
        async with sem:
            r = await litellm.acompletion(model="openai/sim", api_base=base, api_key="sk-bench",
                                          messages=[{"role": "user", "content": text}], temperature=TEMPERATURE,
                                          max_tokens=MAX_TOKENS, num_retries=0)
            return r.choices[0].message.content

    async def problem(text: str) -> str | None:
        return majority(list(await asyncio.gather(*(one(text) for _ in range(a.samples)))))

    return problem, None


async def worker_dspy(base: str, a: argparse.Namespace):
    import dspy

    lm = dspy.LM("openai/sim", api_base=base, api_key="sk-bench", cache=False, temperature=TEMPERATURE,
                 max_tokens=MAX_TOKENS, num_retries=0)
    sem = asyncio.Semaphore(a.in_flight)

    async def one(text: str) -> str:
        async with sem:
            return (await lm.acall(messages=[{"role": "user", "content": text}]))[0]

    async def problem(text: str) -> str | None:
        return majority([o if isinstance(o, str) else o.get("text", "")
                         for o in await asyncio.gather(*(one(text) for _ in range(a.samples)))])

    return problem, None


async def worker_its_hub(base: str, a: argparse.Namespace):
    from its_hub import LMOrchestrator, OpenAICompatibleLanguageModel, SelfConsistency

    lm = OpenAICompatibleLanguageModel(endpoint=base, api_key="sk-bench", model_name="sim", temperature=TEMPERATURE,
                                       max_tokens=MAX_TOKENS)
    sc = SelfConsistency(consistency_space_projection_func=answer_of,
                         orchestrator=LMOrchestrator(max_concurrency=a.in_flight))

    async def problem(text: str) -> str | None:  # its_hub votes itself and returns the chosen message
        out = await sc.ainfer(lm, text, budget=a.samples)
        return answer_of(out.get("content", "") if isinstance(out, dict) else str(out))

    return problem, lm.close


async def worker_tts(base: str, a: argparse.Namespace, trace: bool = True):
    from tts.build import make_backend
    from tts.records import Task
    from tts.run import run_many, run_task
    from tts.strategies.self_consistency import SelfConsistency

    backend = make_backend("sim", backend="openai", api_base=base, api_key="sk-bench", concurrency=a.in_flight)
    sc = SelfConsistency(n=a.samples)
    from tts.context import SamplingDefaults

    defaults = SamplingDefaults(temperature=TEMPERATURE, max_tokens=MAX_TOKENS)

    async def problem(text: str) -> str | None:
        res = await run_task(sc, Task(id="p", prompt=text), backend, defaults=defaults, trace=trace)
        return res.answer

    async def batch(texts: list[str]) -> list[str | None]:  # the workload itself: one run_many
        return [r.answer for r in await run_many(sc, texts, backend, defaults=defaults, trace=trace)]

    problem.batch = batch  # type: ignore[attr-defined]
    return problem, backend.aclose


async def worker_tts_notrace(base: str, a: argparse.Namespace):
    return await worker_tts(base, a, trace=False)


WORKERS = {"raw-aiohttp": worker_raw_aiohttp, "raw-litellm": worker_raw_litellm, "dspy": worker_dspy,
           "its_hub": worker_its_hub, "tts": worker_tts, "tts-notrace": worker_tts_notrace,
           "tts+uvloop": worker_tts, "tts@base": worker_tts}


async def run_worker(a: argparse.Namespace) -> dict:
    problem, close = await WORKERS[a.worker](a.base, a)
    # warm-up: one wave of in-flight calls (connections, lazy imports), off the clock; none when cold
    warm_problems = 0 if a.cold else max(1, a.in_flight // a.samples)
    await asyncio.gather(*(problem(prompt(f"{a.tag}-warm", p)) for p in range(warm_problems)))
    t_wall, wall0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    texts = [prompt(a.tag, p) for p in range(a.problems)]
    batch = getattr(problem, "batch", None)
    answers = await batch(texts) if batch else await asyncio.gather(*(problem(t) for t in texts))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if close is not None:
        await close()
    return {"wall": wall, "cpu": cpu, "t0": t_wall, "t1": t_wall + wall, "warm_calls": warm_problems * a.samples,
            "answered": sum(x is not None for x in answers)}


def worker_main(a: argparse.Namespace) -> None:
    import logging

    logging.disable(logging.WARNING)  # peers' deprecation chatter is not part of the measurement
    import warnings

    warnings.simplefilter("ignore")
    if a.uvloop:
        from tts.run import uvloop_factory

        with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
            out = runner.run(run_worker(a))
    else:
        out = asyncio.run(run_worker(a))
    print("RESULT " + json.dumps(out), flush=True)


# -- the driver ---------------------------------------------------------------------------------------
def peers_python(venv: Path) -> tuple[Path, str | None]:
    """The peers' interpreter, and why the peers cannot run (None when they can)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making the peers' venv in {venv} (once): {' '.join(PEERS)}", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        got = made if made.returncode else subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS],
                                                           capture_output=True, text=True)
        if got.returncode:
            lines = [ln for ln in (got.stderr or got.stdout).splitlines() if "error" in ln.lower()]
            return python, "not installed: " + (lines[-1] if lines else f"pip exited {got.returncode}")[:100]
    return python, None


class Poller:
    """Samples the server's `in_flight` every 10 ms in a thread."""

    def __init__(self, base: str) -> None:
        self.url = base.removesuffix("/v1") + "/stats"
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    self.samples.append((t, json.load(r)["in_flight"]))
            except OSError:
                pass
            self._stop.wait(max(0.0, 0.01 - (time.time() - t)))

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def occupancy(self, t0: float, t1: float, slots: int) -> tuple[float, float]:
        got = [n for t, n in self.samples if t0 <= t <= t1]
        if not got:
            return float("nan"), float("nan")
        return statistics.mean(got) / slots, sum(n >= slots for n in got) / len(got)


def run_one(system: str, python: Path, base: str, a: argparse.Namespace, tag: str,
            poll: bool = False, cold: bool = False) -> dict:
    urllib.request.urlopen(urllib.request.Request(base.removesuffix("/v1") + "/reset", method="POST"), timeout=5)
    py = sys.executable if system.startswith("tts") else str(python)
    cmd = [py, str(Path(__file__).resolve()), "--worker", system, "--base", base, "--problems", str(a.problems),
           "--samples", str(a.samples), "--in-flight", str(a.in_flight), "--tag", tag]
    if system == "tts+uvloop":
        cmd.append("--uvloop")
    if cold:
        cmd.append("--cold")
    tree = a.baseline if system == "tts@base" else HERE.parent
    env = dict(os.environ, PYTHONPATH=str(tree)) if system.startswith("tts") else dict(os.environ)
    poller = Poller(base) if poll else None
    if poller is not None:
        poller.__enter__()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    finally:
        if poller is not None:
            poller.__exit__()
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return {"failed": f"failed: {(err[-1] if err else 'no result')[:90]}"}
    out = json.loads(line.removeprefix("RESULT "))
    s = stats(base)
    expected = out["warm_calls"] + a.problems * a.samples
    out["served"] = s["ok"]
    if s["ok"] != expected or s["requests"] != expected:
        raise SystemExit(f"{system}: the server served {s['ok']} of {s['requests']} requests, expected {expected}")
    if poller is not None:
        out["occupancy"] = poller.occupancy(out["t0"], out["t1"], a.in_flight)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--ttft", type=float, default=0.1)
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(WORKERS)}")
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "tts-bench" / "venv")
    ap.add_argument("--occupancy", action="store_true", help="one more, untimed, round sampling slots busy")
    ap.add_argument("--baseline", type=Path, help="a checkout of tts to run as system tts@base, beside this tree's")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="t", help=argparse.SUPPRESS)
    ap.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker_main(a)

    systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    if a.baseline is not None and "tts@base" not in systems:
        systems.append("tts@base")
    unknown = [s for s in systems if s not in WORKERS]
    if unknown:
        raise SystemExit(f"unknown system(s) {', '.join(unknown)}; allowed: {', '.join(WORKERS)}")
    python, missing = (peers_python(a.venv) if any(not s.startswith("tts") for s in systems)
                       else (Path(sys.executable), None))
    calls = a.problems * a.samples
    ideal = math.ceil(calls / a.in_flight) * a.ttft
    modes = ("warm", "cold")
    runs: dict[tuple[str, str], list[dict]] = {(s, m): [] for s in systems for m in modes}
    occ: dict[str, tuple[float, float]] = {}
    why: dict[str, str] = {s: missing for s in systems if missing and not s.startswith("tts")}
    with simserver("--ttft", str(a.ttft)) as base:
        for r in range(a.rounds):
            order = systems[r % len(systems):] + systems[:r % len(systems)]  # alternate who goes first
            for s in order:
                for m in (modes if r % 2 == 0 else modes[::-1]):
                    if s in why:
                        continue
                    out = run_one(s, python, base, a, f"{s}-{m}-r{r}", cold=m == "cold")
                    if "failed" in out:
                        why[s] = out["failed"]
                    else:
                        runs[s, m].append(out)
        if a.occupancy:
            for s in systems:
                if s not in why:
                    occ[s] = run_one(s, python, base, a, f"{s}-occ", poll=True)["occupancy"]
    print(f"{a.problems} problems x {a.samples} samples = {calls} calls, {a.in_flight} in flight, server latency "
          f"{a.ttft} s, ideal {ideal:.2f} s; medians of {a.rounds} alternating round(s), each system in its own "
          f"process; warm: imports and one warm-up wave off the clock; cold: imports off the clock, no warm-up; "
          f"every run's calls checked against /stats")
    head = f"| {'system':<12} | {'run':<4} | wall / ideal | client CPU per call | all rounds (wall/ideal; CPU ms) |"
    if occ:
        head += " slots busy (mean; ticks all busy) |"
    print(head)
    print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
    med: dict[tuple[str, str], tuple[float, float]] = {}
    for s in systems:
        for m in modes:
            if s in why and not runs[s, m]:
                print(f"| {s:<12} | {m:<4} | {why[s]} |")
                continue
            walls = [x["wall"] / ideal for x in runs[s, m]]
            cpus = [x["cpu"] / calls * 1000 for x in runs[s, m]]
            med[s, m] = statistics.median(walls), statistics.median(cpus)
            every = " ".join(f"{w:.2f}" for w in walls) + "; " + " ".join(f"{c:.2f}" for c in cpus)
            row = f"| {s:<12} | {m:<4} | {med[s, m][0]:>12.2f} | {med[s, m][1]:>16.3f} ms | {every:<31} |"
            if occ and m == "warm" and s in occ:
                mean, full = occ[s]
                row += f" {mean:>6.0%}; {full:>4.0%}{'':<22}|"
            print(row)
    targets(med)


def targets(med: dict[tuple[str, str], tuple[float, float]]) -> None:
    """The issue's targets, with the measured ratios: cold tts at or below its_hub on wall/ideal and
    CPU per call, CPU per call at most 1.5x raw aiohttp; warm as before or better."""
    tts, hub, raw = med.get(("tts", "cold")), med.get(("its_hub", "cold")), med.get(("raw-aiohttp", "cold"))
    if tts and hub:
        print(f"target cold tts <= its_hub: wall/ideal {tts[0]:.2f} vs {hub[0]:.2f} ({tts[0] / hub[0]:.2f}x), "
              f"CPU per call {tts[1]:.3f} vs {hub[1]:.3f} ms ({tts[1] / hub[1]:.2f}x)")
    if tts and raw:
        print(f"target cold tts CPU per call <= 1.5x raw aiohttp: {tts[1] / raw[1]:.2f}x")
    base = med.get(("tts@base", "cold"))
    if base and raw:
        print(f"baseline: cold tts@base CPU per call {base[1] / raw[1]:.2f}x raw aiohttp's; this tree's / the "
              f"baseline's: warm {med['tts', 'warm'][1] / med['tts@base', 'warm'][1]:.2f}x, "
              f"cold {tts[1] / base[1]:.2f}x" if tts else "")
    for s in ("tts", "tts-notrace", "tts@base"):
        if (s, "warm") in med and (s, "cold") in med:
            print(f"{s}: cold / warm CPU per call {med[s, 'cold'][1] / med[s, 'warm'][1]:.2f}x")


if __name__ == "__main__":
    main()

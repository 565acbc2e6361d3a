"""What `tts serve` adds over calling the strategy in-process, side by side in one run.

    python benchmarks/serve.py [--requests 256] [--clients 64] [--ttft 0.1] [--n 5] [--optillm PATH]

Starts ../shared/bench/simserver.py (fixed latency `--ttft`, no per-token time) on a free loopback
port. The workload is self-consistency over `--n` samples per request. Paths, each measured once
with 1 client (per-request latency: what the proxy adds) and once with `--clients` clients
(throughput):

- in-process: `run_task` on the lean backend with every wrapper (cache off);
- tts serve: the `tts serve` command in its own process, same stack, posted to by raw aiohttp
  (the lightest client: the table measures the proxy, not the SDK);
- optillm (when `--optillm` names its executable): its `self_consistency` approach in front of the
  same simulated server, same clients.

Upstream calls per path come from the simulated server's own /stats. The machine is shared and
has two cores, so absolute numbers are noisy; compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim import free_port, simserver, stats

REPO = Path(__file__).resolve().parents[1]


def prompt(tag: str, i: int) -> str:
    return f"[{tag} #{i}] What is {i % 10} + {(i * 7) % 10}? End with ANSWER: <number>."


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(one, requests: int, clients: int) -> tuple[list[float], float]:
    """`requests` calls of `one(i)` from `clients` concurrent clients: per-request seconds, wall."""
    queue = list(range(requests))
    latencies: list[float] = []

    async def client() -> None:
        while queue:
            i = queue.pop()
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - t0


async def in_process(sim: str, n: int):
    from tts.build import make_backend
    from tts.context import SamplingDefaults
    from tts.records import Task
    from tts.run import run_task
    from tts.spec import strategy_from_spec

    backend = make_backend("sim", backend="openai", api_base=sim, cache_dir=None, concurrency=1024)
    strategy = strategy_from_spec({"kind": "self-consistency", "n": n})
    defaults = SamplingDefaults(temperature=0.7, max_tokens=64)

    async def one(i: int, tag: str = "inproc") -> None:
        res = await run_task(strategy, Task(id=str(i), prompt=prompt(tag, i)), backend, defaults=defaults)
        assert res.status == "ok", res.error

    return one, backend


def http_client(url: str, model: str, extra: dict | None = None):
    import aiohttp

    session: list = []

    async def one(i: int, tag: str = "http") -> None:
        if not session:
            session.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        body = {"model": model, "messages": [{"role": "user", "content": prompt(tag, i)}], "temperature": 0.7,
                "max_tokens": 64, **(extra or {})}
        async with session[0].post(url + "/chat/completions", json=body) as r:
            data = await r.json()
            assert r.status == 200, data
            assert data["choices"][0]["message"]["content"]

    async def close() -> None:
        if session:
            await session[0].close()

    return one, close


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error is an answer: it is up
                return
            time.sleep(0.2)
    sys.exit(f"server at {url} did not start in {timeout} s")


def start_tts_serve(sim: str, n: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "tts.cli.main", "serve", "--backend", "openai", "--api-base", sim,
                             "--model", "sim", "--no-cache", "--concurrency", "1024", "--strategy",
                             "self-consistency", "--n", str(n), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(url.removesuffix("/v1") + "/health", proc)
    return proc, url


def start_optillm(exe: str, sim: str) -> tuple[subprocess.Popen, str]:
    """optillm's `self_consistency` approach draws 5 samples (its fixed default), one after another."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPTILLM_API_KEY"}
    env.update(OPENAI_API_KEY="sk-bench", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.Popen([exe, "--base-url", sim, "--host", "127.0.0.1", "--port", str(port), "--approach",
                             "self_consistency", "--log", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(url.removesuffix("/v1") + "/health", proc, timeout=600)  # it imports torch and its plugins
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure(name: str, one, sim: str, requests: int, clients: int, rows: list) -> None:
    await drive(lambda i: one(i, f"{name}-warm"), min(clients, 16), min(clients, 16))  # imports, connections
    for c, count in ((1, max(10, requests // 8)), (clients, requests)):
        before = stats(sim)["ok"]
        lat, wall = await drive(lambda i, c=c: one(i, f"{name}-{c}"), count, c)
        rows.append((name, c, count, statistics.median(lat) * 1000, pct(lat, 0.99) * 1000, count / wall,
                     (stats(sim)["ok"] - before) / count))


async def main_async(args: argparse.Namespace) -> None:
    rows: list = []
    with simserver("--ttft", str(args.ttft), "--tpot", "0") as sim:
        one, backend = await in_process(sim, args.n)
        await measure("in-process", one, sim, args.requests, args.clients, rows)
        await backend.aclose()

        proc, url = start_tts_serve(sim, args.n)
        try:
            one, close = http_client(url, "sim")
            await measure("tts serve", one, sim, args.requests, args.clients, rows)
            await close()
        finally:
            stop(proc)

        if args.optillm:
            proc, url = start_optillm(args.optillm, sim)
            try:
                one, close = http_client(url, "sim")
                await measure("optillm", one, sim, args.requests, args.clients, rows)
                await close()
            finally:
                stop(proc)

    print(f"\nself-consistency n={args.n}, upstream latency {args.ttft * 1000:.0f} ms (simserver), "
          f"{os.cpu_count()} cores shared")
    print(f"{'path':<12} {'clients':>7} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'calls/req':>9}")
    for name, c, count, p50, p99, rps, cpr in rows:
        print(f"{name:<12} {c:>7} {count:>8} {p50:>8.1f} {p99:>8.1f} {rps:>8.1f} {cpr:>9.2f}")
    base = {c: (p50, p99, rps) for name, c, _, p50, p99, rps, _ in rows if name == "in-process"}
    for name, c, _, p50, p99, rps, _ in rows:
        if name != "in-process" and c in base:
            b = base[c]
            print(f"{name} vs in-process at {c} client(s): +{p50 - b[0]:.1f} ms p50, +{p99 - b[1]:.1f} ms p99, "
                  f"{rps / b[2]:.2f}x req/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=256, help="requests at full concurrency (default 256)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--ttft", type=float, default=0.1, help="upstream latency per call, seconds")
    ap.add_argument("--n", type=int, default=5, help="self-consistency samples per request (5: optillm's own)")
    ap.add_argument("--optillm", help="path of the optillm executable (in its own venv), to compare")
    args = ap.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

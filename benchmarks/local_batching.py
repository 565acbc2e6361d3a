"""The embedded model sampling in batches: self-consistency@8 on the example sums with `tts run`'s
default flags against eight sequential samples per task, side by side in one run.

    python benchmarks/local_batching.py [--limit 30] [--rounds 2] [--chunks 1] [--seed 0] [--before OLD_CHECKOUT]

Each configuration is one `tts run ... --model local --strategy self-consistency --n 8 --seed S
--no-cache` in a fresh process (server start included, as a user gets it):
- default: the flags as shipped (`--n-per-request 8`, `--concurrency 64` for `--model local`);
- sequential: `--n-per-request 1 --concurrency 1`, one sample after another.
Each configuration runs `rounds` times over all the tasks (or over `chunks` parts of them; round r
with seed S + r in both), in ABBA order (default, sequential, sequential, default, ...), so a
machine whose load changes during the run weighs on both alike; the walls are summed (each run
starts its own server, as a user's does).
Printed: wall time, accuracy, calls and tokens (from the results), the peak RSS of the largest
process (the model server), and the ratio against the target (<= 0.35). Same seeds in both: a
sample's seed is seed + its index either way (batched decoding rounds differently, so texts may part
a few tokens in). `--before DIR` also times the README's main job (no seed) with the code in DIR
(e.g. a checkout before the batching server) beside this tree's, in the same ABBA parts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "examples" / "arithmetic.jsonl"
CONFIGS = {"default": [], "sequential": ["--n-per-request", "1", "--concurrency", "1"]}
# Runs a command and prints the peak RSS (KiB) of the largest process among it and its waited-for children.
PEAK = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
        "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(code)")


def tts_run(tree: Path, tasks: Path, out: Path, flags: list[str]) -> dict:
    cmd = [sys.executable, "-c", PEAK, sys.executable, "-m", "tts.cli.main", "run", str(tasks), "--model", "local",
           "--strategy", "self-consistency", "--n", "8", "--quiet", "--out", str(out), *flags]
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tts run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak = next(int(ln.split()[1]) for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KIB"))
    rows = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]
    usage = [r.get("usage", {}) for r in rows]
    return {"wall": wall, "peak_mib": peak / 1024, "tasks": len(rows),
            "right": sum(bool(r.get("correct")) for r in rows),
            "calls": sum(u.get("calls", 0) for u in usage),
            "tokens": sum(u.get("completion_tokens", 0) for u in usage)}


def next_seed(flags: list[str], round_: int) -> list[str]:
    """Round r draws with seed + r (the same in every configuration): a run's completion tokens
    move by 10-20% with a few long rambles, so more draws make the comparison steadier."""
    if "--seed" not in flags:
        return flags
    at = flags.index("--seed") + 1
    return [*flags[:at], str(int(flags[at]) + round_), *flags[at + 1:]]


def add(total: dict | None, part: dict) -> dict:
    if total is None:
        return dict(part)
    out = {k: total[k] + part[k] for k in ("wall", "tasks", "right", "calls", "tokens")}
    out["peak_mib"] = max(total["peak_mib"], part["peak_mib"])
    return out


def abba(runs: dict[str, tuple[Path, list[str]]], lines: list[str], chunks: int, tmp: Path,
         rounds: int = 1) -> dict[str, dict]:
    """Each configuration over the same parts of `lines`, `rounds` times, in ABBA order, summed."""
    size = -(-len(lines) // chunks)
    parts = [lines[i:i + size] for i in range(0, len(lines), size)] * rounds
    got: dict[str, dict | None] = dict.fromkeys(runs)
    names = list(runs)
    for i, part in enumerate(parts):
        tasks = tmp / f"part{i}.jsonl"
        tasks.write_text("".join(part))
        for name in (names if i % 2 == 0 else names[::-1]):
            tree, flags = runs[name]
            got[name] = add(got[name], tts_run(tree, tasks, tmp / f"{name}{i}.jsonl", next_seed(flags, i // chunks)))
    return {k: v for k, v in got.items() if v is not None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=30, help="the first N example sums")
    ap.add_argument("--rounds", type=int, default=2, help="times each configuration runs, in ABBA order")
    ap.add_argument("--chunks", type=int, default=1, help="parts the tasks are split into (each its own run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--before", type=Path, help="a checkout to time the README's main job with, beside this tree")
    ap.add_argument("--readme-seed", type=int, help="run the README's main job with --seed N (the same samples "
                    "before and after, where the engines agree), not as written (unseeded)")
    ap.add_argument("--readme-only", action="store_true", help="only the README's main job, before and after")
    a = ap.parse_args()
    lines = TASKS.read_text().splitlines(keepends=True)
    with tempfile.TemporaryDirectory() as tmp:
        got = {} if a.readme_only else abba(
            {name: (ROOT, ["--seed", str(a.seed), "--no-cache", *flags]) for name, flags in CONFIGS.items()},
            lines[:a.limit], a.chunks, Path(tmp), a.rounds)
        readme = {}
        if a.before:
            seed = [] if a.readme_seed is None else ["--seed", str(a.readme_seed)]
            trees = {"before": a.before.resolve(), "after": ROOT}
            readme = abba({k: (tree, ["--no-cache", *seed]) for k, tree in trees.items()}, lines, a.chunks, Path(tmp),
                          a.rounds)
    if got:
        report(got, a)
    seeded = "unseeded, as written" if a.readme_seed is None else f"--seed {a.readme_seed}"
    for label, r in readme.items():
        print(f"README main job ({seeded}; {label}, {a.before if label == 'before' else ROOT}): {r['wall']:.1f} s, "
              f"{r['right']}/{r['tasks']} right, {r['calls']} calls, {r['tokens']} completion tokens, "
              f"peak RSS {r['peak_mib']:.0f} MiB")
    if len(readme) == 2:
        print(f"README main job after / before: {readme['after']['wall'] / readme['before']['wall']:.2f}x")


def report(got: dict[str, dict], a: argparse.Namespace) -> None:
    print(f"self-consistency@8 on {a.limit} example sums, embedded SmolLM2-135M, seeds {a.seed}.."
          f"{a.seed + a.rounds - 1}: {a.rounds} round(s) "
          f"of {a.chunks} part(s) each, run ABBA, walls summed (server start included in each run)")
    print("| flags | wall s | right | calls | completion tokens | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for name, r in got.items():
        flags = " ".join(CONFIGS[name]) or "(defaults)"
        print(f"| {name}: {flags} | {r['wall']:.1f} | {r['right']}/{r['tasks']} | {r['calls']} | {r['tokens']} | "
              f"{r['peak_mib']:.0f} |")
    ratio = got["default"]["wall"] / got["sequential"]["wall"]
    print(f"target: default wall <= 0.35x sequential: {ratio:.2f}x ({'met' if ratio <= 0.35 else 'NOT met'}); "
          f"accuracy {got['default']['right']} vs {got['sequential']['right']} of {got['default']['tasks']}")
    d, q = got["default"], got["sequential"]
    per_token = (d["wall"] / d["tokens"]) / (q["wall"] / q["tokens"])
    print(f"wall per completion token, default / sequential: {per_token:.2f}x (the two drew "
          f"{got['default']['tokens']} and {got['sequential']['tokens']} tokens)")


if __name__ == "__main__":
    main()

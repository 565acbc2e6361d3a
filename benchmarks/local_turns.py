"""An agent's turns on the embedded model: each request is the whole conversation so far (the
previous prompt, the reply, and a new message), as every chat agent sends it.

    python benchmarks/local_turns.py [--turns 8] [--rounds 2] [--before OLD_CHECKOUT]

The embedded server keeps a finished request's sequence (prompt and reply) in its KV cache, so the
next turn decodes only what it adds; without that, every turn decodes the whole history again.
Each tree starts its own server (`LocalServer()` as a user gets it: threads on the idle cores) and
sends the same greedy conversation with the `openai` SDK; runs alternate ABBA for `--rounds`
rounds. Printed: the whole conversation's time, each turn's (mean of runs), and the prompt tokens
the server reported, for this tree and (with `--before`) the other one, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = ("You are a careful assistant working through a list of small arithmetic chores. Answer each "
          "request briefly, show the sum you computed, and keep a running total of every result so far.")

WORKER = r"""
import asyncio, json, sys, time
from tts.local.server import LocalServer

async def main(turns):
    import openai
    async with LocalServer() as server:
        client = openai.AsyncOpenAI(base_url=server.api_base, api_key="none")
        messages = [{"role": "system", "content": SYSTEM}]
        times, prompt_tokens = [], 0
        for t in range(turns):
            messages.append({"role": "user", "content": f"Chore {t + 1}: what is {7 * t + 3} + {5 * t + 4}?"})
            started = time.perf_counter()
            r = await client.chat.completions.create(model=server.model, messages=messages, max_tokens=48,
                                                     temperature=0.0)
            times.append(time.perf_counter() - started)
            prompt_tokens += r.usage.prompt_tokens
            messages.append({"role": "assistant", "content": r.choices[0].message.content})
        await client.close()
    print(json.dumps({"times": times, "prompt_tokens": prompt_tokens}))

SYSTEM = sys.argv[2]
asyncio.run(main(int(sys.argv[1])))
"""


def one(tree: Path, turns: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-c", WORKER, str(turns), SYSTEM], capture_output=True, text=True,
                          env=env, cwd=tree, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"the conversation failed in {tree}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", type=Path, help="a checkout to run beside this tree (e.g. one without kept sequences)")
    a = ap.parse_args()
    trees = {"this tree": ROOT, **({"before": a.before.resolve()} if a.before else {})}
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    names = list(trees)
    for r in range(a.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(one(trees[name], a.turns))
    print(f"an agent's {a.turns} turns on the embedded model (greedy, 48 tokens a reply, default server), "
          f"{a.rounds} run(s) each, ABBA")
    print("| tree | whole conversation s | per turn s (mean of runs) | prompt tokens |")
    print("|---|---|---|---|")
    totals = {}
    for name, got in runs.items():
        per_turn = [statistics.mean(run["times"][t] for run in got) for t in range(a.turns)]
        totals[name] = sum(per_turn)
        print(f"| {name} ({trees[name]}) | {totals[name]:.2f} | {' '.join(f'{x:.2f}' for x in per_turn)} | "
              f"{got[0]['prompt_tokens']} |")
    if len(totals) == 2:
        print(f"this tree / before: {totals['this tree'] / totals['before']:.2f}x")


if __name__ == "__main__":
    main()

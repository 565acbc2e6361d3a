#!/usr/bin/env python3
"""Solver-grader and conjecture extraction: wall time against stage count, and calls per phase.

Against the loopback simulated server (fixed latency L per call, no per-token time), a strategy's
wall time should be about (its sequential stages) x L however many calls run in parallel.

The simulated server ends every reply with "ANSWER: <x>", where x = a + b for the first "a + b"
in the prompt. So each scenario overrides the grader prompt to start with "Rubric 3 + 4" (every
grade 7: the confirmation path) or "Rubric 1 + 2" (every grade 3: all feedback rounds), and
reads grades with `GradeFormat(pattern="ANSWER: (?P<grade>\\d+)")`. The server cannot write the
extractor's JSON, so for conjecture extraction the `extract` calls alone go to a scripted model
with the same latency L (in process); every other call goes over HTTP to the server.

    python benchmarks/solver_grader.py [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import simserver, stats

PROBLEM = "Show that the product of two odd integers is odd."
SIM_GRADE = r"ANSWER:\s*(?P<grade>-?\d+)"


def reset(base: str) -> None:
    req = urllib.request.Request(base.removesuffix("/v1") + "/reset", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=5):
        pass


def grader_prompt(a: int, b: int) -> str:
    # The server answers the first "a + b" of the last user message: this fixes every grade at a + b.
    return (f"Rubric {a} + {b}.\nGrade strictly.\n## Problem\n{{{{ problem }}}}\n## Solution to grade\n"
            f"{{{{ solution }}}}\nEnd with Final Grade: X/{{{{ max_grade }}}}")


def conjecture_grader(a: int, b: int) -> str:
    return (f"Rubric {a} + {b}.\n## Statement\n{{{{ statement }}}}\n## Proof to grade\n{{{{ proof }}}}\n"
            f"{{{{ max_grade }}}}")


class ExtractorRouter:
    """Send extractor calls to a scripted model (same latency), the rest to the real backend."""

    def __init__(self, inner, latency: float, conjectures: int) -> None:
        from tts.testing import ScriptedBackend

        self.inner = inner
        # new claims in every loop (known ones would be skipped, and with them two stages)
        bodies = [json.dumps({"conjectures": [{"statement": f"For every integer n, claim {loop}.{i} holds for n.",
                                               "negation": f"Some integer n violates claim {loop}.{i}."}
                                              for i in range(conjectures)],
                              "solution": "Assume the claims; then the product is odd."}) for loop in range(8)]
        self.scripted = ScriptedBackend(bodies, latency=latency)

    async def complete(self, request):
        last = request.messages[-1].content or ""
        if "Reply with one JSON object only" in str(last):
            return await self.scripted.complete(request)
        return await self.inner.complete(request)


def scenarios():
    from tts.strategies import ConjectureExtraction, SolverGrader
    from tts.strategies.grading import GradeFormat

    fmt = GradeFormat(pattern=SIM_GRADE)
    low, top = grader_prompt(1, 2), grader_prompt(3, 4)
    cg = {"conjecture_grade.j2": conjecture_grader(2, 3)}  # every proof grades 5: both sides proven
    return [  # (label, strategy, stages, extractor conjectures)
        ("solver-grader S=4 R=2 k=3, grades 3", SolverGrader(solvers=4, rounds=2, grade_format=fmt,
                                                             prompts={"grader_grade.j2": low}), 6, 0),
        ("solver-grader S=4 R=2 k=3, grades 7", SolverGrader(solvers=4, rounds=2, grade_format=fmt,
                                                             prompts={"grader_grade.j2": top}), 3, 0),
        ("solver-grader S=16 R=1 k=3, grades 3", SolverGrader(solvers=16, rounds=1, grade_format=fmt,
                                                              prompts={"grader_grade.j2": low}), 4, 0),
        ("conjectures S=4 R=1 L=2 F=5 C=3, grades 3",
         ConjectureExtraction(solvers=4, rounds=1, loops=2, final_solvers=5, grade_format=fmt,
                              prompts={"grader_grade.j2": low, **cg}), 2 * 2 + 2 * 5, 3),
        # every grade 7 (confirmed): phase 1 solve, grade, confirm; the loop (kept going with
        # stop_when_accepted=False) extract, prove, grade proofs, final solve, grade, confirm
        ("conjectures S=4 R=0 L=1 F=5 C=4, grades 7",
         ConjectureExtraction(solvers=4, rounds=0, loops=1, final_solvers=5, grade_format=fmt, stop_when_accepted=False,
                              prompts={"grader_grade.j2": top, **cg}), 3 + 6, 4),
    ]


async def run_one(strategy, base: str, latency: float, conjectures: int, seed: int):
    from tts.build import make_backend
    from tts.context import SamplingDefaults
    from tts.records import Task

    backend = make_backend("sim", backend="openai", api_base=base, cache_dir=None, concurrency=512, retries=0)
    routed = ExtractorRouter(backend, latency, conjectures) if conjectures else backend
    t0 = time.perf_counter()
    try:
        res = await strategy.run(Task(id="p", prompt=PROBLEM), routed,
                                 defaults=SamplingDefaults(temperature=0.7, max_tokens=32, seed=seed))
    finally:
        await backend.aclose()
    return res, time.perf_counter() - t0


def phases(res) -> str:
    c = Counter(r.role for r in res.trace)
    order = ["solve", "refine", "grade", "confirm", "extract", "extract-repair", "conjecture-solve", "conjecture-grade"]
    return " ".join(f"{k}={c[k]}" for k in order if c[k])


async def main(latency: float) -> None:
    rows = []
    with simserver("--ttft", str(latency), "--tpot", "0", "--p-correct", "1.0", "--out-tokens", "16") as base:
        from tts.strategies import SolverGrader

        await run_one(SolverGrader(solvers=1, rounds=0), base, latency, 0, seed=-1)  # warm-up: imports, session
        for label, strategy, stages, conj in scenarios():
            reset(base)  # "repeats" counts bodies seen before: within this run only
            before = stats(base)
            res, wall = await run_one(strategy, base, latency, conj, seed=len(rows))
            after = stats(base)
            served = after["requests"] - before["requests"]
            repeats = after["duplicate_bodies"] - before["duplicate_bodies"]
            assert res.status == "ok", res.error
            ideal = stages * latency
            rows.append((label, stages, len(res.trace), served, repeats, phases(res), ideal, wall, wall / ideal,
                         res.metadata.get("accepted")))
    head = ("strategy", "stages", "calls", "http", "repeats", "calls per phase", "ideal_s", "wall_s", "ratio",
            "accepted")
    table = [head] + [(r[0], str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5], f"{r[6]:.2f}", f"{r[7]:.2f}",
                       f"{r[8]:.2f}", str(r[9])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    print(f"latency L = {latency:.2f} s per call (simserver --ttft {latency} --tpot 0); ratio = wall / (stages x L); "
          "http = requests the server saw (extract calls are scripted); repeats = requests identical to an earlier "
          "one of the same run")
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2)
    asyncio.run(main(ap.parse_args().latency))

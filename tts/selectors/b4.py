"""B4 (Chen et al., "B4: Towards Optimal Assessment of Plausible Code Solutions with Plausible
Tests", ASE 2024): pick code by the posterior over which solutions and tests are correct.

Every candidate runs against every test (`tts.code.sandbox`), giving a 0/1 pass matrix E (rows:
solutions, columns: tests). The paper's MAP problem over (x = which solutions are correct,
y = which tests are correct) is intractable; its approximation enumerates the consistent sets:
each distinct row pattern of E proposes x = the solutions with that exact row, y = that row.
A consistent set scores the sum of four Beta-Bernoulli log marginal likelihoods,
    log B(|x| + a, N - |x| + 1)       prior on how many solutions are correct
  + log B(|y| + a, M - |y| + 1)       prior on how many tests are correct
  + log B(s1 + 1, n1 - s1 + 1)        E on (wrong solutions, correct tests): free
  + log B(s0 + 1, n0 - s0 + b0)       E on (wrong solutions, wrong tests): rarely passed
where s1/n1 and s0/n0 are the passes/cells of those blocks of E, a = `alpha_xy`, b0 = `beta_0`.
The highest-scoring set's solutions win; candidates come back best set first. (The paper's
defaults: a = 1e3, b0 searched over 1e4..1e6; ours: a = 1e3, b0 = 1e4.)

Choices where the paper is silent for a library (ours): tests come from the task (`tests=
"task"`), the model (`"generated"`, the paper's setting and the default), or both. Task tests
are trusted: with only those, B4 reduces to "most tests passed"; with both, candidates rank
first by task tests passed, then by B4 over the generated tests. Ties between sets, and
candidates within a set, are broken by the seeded RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from tts.code.code_task import report_summary
from tts.context import RunContext
from tts.records import Candidate, Task
from tts.registry import register
from tts.selectors.annotate import with_meta
from tts.selectors.code_tests import NO_WRITTEN_TESTS, TestSource, _RunsTests


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _block(matrix: Sequence[Sequence[int]], rows: list[int], cols: list[int]) -> tuple[int, int]:
    return sum(matrix[i][j] for i in rows for j in cols), len(rows) * len(cols)


Matrix = Sequence[Sequence[int]]


def b4_scores(matrix: Matrix, beta_0: float = 1e4, alpha_xy: float = 1e3) -> dict[tuple[int, ...], float]:
    """Log posterior (up to a constant) of each consistent set, keyed by its row pattern."""
    n = len(matrix)
    m = len(matrix[0]) if n else 0
    out: dict[tuple[int, ...], float] = {}
    for pattern in dict.fromkeys(tuple(row) for row in matrix):
        wrong = [i for i in range(n) if tuple(matrix[i]) != pattern]
        good_tests = [j for j in range(m) if pattern[j]]
        bad_tests = [j for j in range(m) if not pattern[j]]
        s1, n1 = _block(matrix, wrong, good_tests)
        s0, n0 = _block(matrix, wrong, bad_tests)
        size = n - len(wrong)
        out[pattern] = (_log_beta(size + alpha_xy, n - size + 1)
                        + _log_beta(len(good_tests) + alpha_xy, m - len(good_tests) + 1)
                        + _log_beta(s1 + 1, n1 - s1 + 1) + _log_beta(s0 + 1, n0 - s0 + beta_0))
    return out


def b4_rank(matrix: Matrix, beta_0: float = 1e4, alpha_xy: float = 1e3) -> list[tuple[list[int], float]]:
    """Consistent sets best first: (row indices, log posterior). Equal scores keep first-seen order."""
    scores = b4_scores(matrix, beta_0, alpha_xy)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    return [([i for i, row in enumerate(matrix) if tuple(row) == p], s) for p, s in ranked]


def max_pass_rank(matrix: Sequence[Sequence[int]]) -> list[tuple[list[int], float]]:
    """The "most tests passed" heuristic (MaxPass) in the same form, for comparison and for
    trusted tests."""
    totals = sorted({sum(r) for r in matrix}, reverse=True)
    return [([i for i, r in enumerate(matrix) if sum(r) == t], float(t)) for t in totals]


@register
class B4(_RunsTests):
    """Select code by B4's approximate posterior over consistent (solutions, tests) sets."""

    kind: Literal["b4"] = "b4"
    tests: TestSource = "generated"
    beta_0: float = Field(1e4, gt=0)
    """Prior against wrong solutions passing wrong tests (the paper's b0)."""
    alpha_xy: float = Field(1e3, gt=0)
    """Prior that solutions and tests are plausible (the paper's alpha for x and y)."""

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        if not candidates:
            return []
        tests, n_task = await self.collect_tests(task, ctx)
        reports = await self.run_all(task, candidates, tests)
        matrix = [r.pass_vector() for r in reports]
        rng = ctx.rng("b4")
        keys = [rng.random() for _ in candidates]
        generated = [row[n_task:] for row in matrix]
        trusted = [sum(row[:n_task]) for row in matrix]
        posterior: list[float | None] = [None] * len(candidates)
        group = [0] * len(candidates)
        if n_task < len(tests):
            for g, (rows, score) in enumerate(b4_rank(generated, self.beta_0, self.alpha_xy)):
                for i in rows:
                    posterior[i], group[i] = score, g
        order = sorted(range(len(candidates)), key=lambda i: (-trusted[i], -(posterior[i] or 0.0), keys[i]))
        out = []
        for i in order:
            meta = {"b4": {"set": group[i], "log_posterior": posterior[i], "task_tests_passed": trusted[i],
                           "task_tests": n_task, "generated_tests": len(tests) - n_task},
                    "tests_run": report_summary(reports[i], self.tests)}
            score = posterior[i] if posterior[i] is not None else float(trusted[i])
            if not tests:
                meta["tests_note"] = NO_WRITTEN_TESTS
            out.append(with_meta(candidates[i], score, **meta))
        return out[:k]

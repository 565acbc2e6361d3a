"""Tests for code candidates: a model-written test generator, and the `tests` verifier.

`TestGenerator` asks the model for assert lines (`prompts/code_tests.j2`) and keeps the ones
that parse as one Python `assert` statement (a multi-line assert is dropped) and, when the task
names its entry point, call it; duplicates are dropped.

When the model writes no test that parses, nothing is run: the tests verifier scores every
candidate 0 and B4 keeps a seeded random order, each saying so in `metadata["tests_note"]`.

`TestsVerifier` (`--verifier tests`) runs each candidate's code (see `tts.code.code_task`) against
the task's own tests (`tests="task"`, the default), model-written ones (`"generated"`), or both,
in the sandbox of `tts.code.sandbox`. A candidate's score is the fraction of tests it passed (1.0 =
all); its `metadata["tests_run"]` records every test's outcome (passed / failed / timeout /
error) and the sandbox layers in force.
"""

from __future__ import annotations

import ast
import asyncio
import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from tts.code.code_task import report_summary, run_candidate, task_tests
from tts.code.sandbox import ExecReport, SandboxLimits
from tts.context import RunContext
from tts.errors import ConfigError
from tts.prompts import render
from tts.records import Candidate, Task
from tts.registry import Component, TestWriterField, register
from tts.selectors.annotate import Annotates, with_meta

TestSource = Literal["task", "generated", "both"]
NO_WRITTEN_TESTS = "the model wrote no test that parses: every candidate scores 0, the pick is by the seeded RNG"
_FENCED = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)


def parse_tests(text: str, entry_point: str | None = None) -> list[str]:
    """The distinct one-line assert statements in a reply (in fenced blocks when there are any)."""
    blocks = _FENCED.findall(text) or [text]
    out: list[str] = []
    for line in (ln.strip() for b in blocks for ln in b.splitlines()):
        if not line.startswith("assert") or line in out:
            continue
        try:
            tree = ast.parse(line)
        except SyntaxError:
            continue
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
            continue
        if entry_point and not re.search(rf"\b(?:{re.escape(entry_point)}|candidate)\s*\(", line):
            continue  # asserts nothing about the function under test
        out.append(line)
    return out


@register
class TestGenerator(Component):
    """Model-written tests for a code task: `samples` calls, each asked for `count` asserts."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name
    kind: Literal["test-generator"] = "test-generator"
    samples: int = Field(1, ge=1)
    """Calls to the model (in parallel, distinct sample indices)."""
    count: int = Field(5, ge=1)
    """Asserts asked for in each call."""
    max_tests: int = Field(10, ge=1)
    """Keep at most this many distinct tests."""
    use: str = "default"
    """Which configured backend writes the tests."""
    temperature: float | None = None
    max_tokens: int | None = None

    async def write_tests(self, task: Task, ctx: RunContext) -> list[str]:
        entry = task.metadata.get("entry_point")
        prompt = render("code_tests.j2", self.prompts, task=task.text, entry_point=entry, count=self.count)
        params: dict[str, Any] = {k: v for k, v in (("temperature", self.temperature),
                                                    ("max_tokens", self.max_tokens)) if v is not None}
        comps = await ctx.sample([{"role": "user", "content": prompt}], self.samples, role="test-gen",
                                 use=self.use, **params)
        tests: list[str] = []
        for comp in comps:
            tests += [t for t in parse_tests(comp.text, entry) if t not in tests]
        return tests[:self.max_tests]


class _RunsTests(Component):
    """Shared config of everything that runs candidates against tests."""

    tests: TestSource = "task"
    generator: TestWriterField = Field(default_factory=TestGenerator)
    """Writes the tests when `tests` is generated or both (a `test-generator` spec)."""
    timeout_s: float = Field(5.0, gt=0)
    """Per-test time limit (a task's metadata `timeout_s` wins)."""
    memory_mb: int = Field(1024, ge=64)

    def limits(self) -> SandboxLimits:
        return SandboxLimits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    async def collect_tests(self, task: Task, ctx: RunContext | None) -> tuple[list[str], int]:
        """The tests to run and how many of them (the first ones) are the task's own."""
        given = task_tests(task) if self.tests in ("task", "both") else []
        written: list[str] = []
        if self.tests in ("generated", "both"):
            if ctx is None:
                raise ConfigError(f"{self.kind}: model-written tests need a run context")  # type: ignore[attr-defined]
            written = [t for t in await self.generator.write_tests(task, ctx.child("tests")) if t not in given]
        return given + written, len(given)  # empty when the model wrote no test that parses

    async def run_all(self, task: Task, candidates: list[Candidate], tests: list[str]) -> list[ExecReport]:
        if not tests:
            return [ExecReport() for _ in candidates]
        return list(await asyncio.gather(*(run_candidate(task, c, tests, self.limits()) for c in candidates)))


@register
class TestsVerifier(Annotates, _RunsTests):
    """Run every candidate against the tests; score = fraction passed (a scorer and a selector)."""

    __test__: ClassVar[bool] = False
    kind: Literal["tests"] = "tests"
    threshold: float = 1.0
    """`filter` keeps candidates scoring at least this (1.0: every test passed)."""

    async def annotate(self, task: Task, candidates: list[Candidate], ctx: RunContext | None) -> list[Candidate]:
        if not candidates:
            return []
        tests, n_task = await self.collect_tests(task, ctx)
        source = self.tests if self.tests != "both" or n_task < len(tests) else "task"
        reports = await self.run_all(task, candidates, tests)
        extra = {} if tests else {"tests_note": NO_WRITTEN_TESTS}
        return [with_meta(c, r.fraction, tests_run=report_summary(r, source), **extra)
                for c, r in zip(candidates, reports, strict=True)]

    async def filter(self, task: Task, candidates: list[Candidate], ctx: RunContext | None = None) -> list[Candidate]:
        """The candidates that pass (score >= threshold), in their order, each annotated."""
        return [c for c in await self.annotate(task, candidates, ctx) if (c.score or 0.0) >= self.threshold]

"""Contracts for selectors, scorers and summarizers. Each is a Protocol with one async method;
concrete ones are small frozen pydantic configs (so spec files can name them) or plain functions."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tts.context import RunContext
from tts.records import Candidate, Task, TrajectorySummary


@runtime_checkable
class Selector(Protocol):
    """Pick the best `k` of `candidates` (best first)."""

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]: ...


@runtime_checkable
class Scorer(Protocol):
    """A score per candidate, higher is better, in the candidates' order."""

    async def score(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[float]: ...


@runtime_checkable
class Summarizer(Protocol):
    """Turn one attempt into the shared bounded representation."""

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext) -> TrajectorySummary: ...

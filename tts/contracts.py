"""Every contract of tts in one place: each is a Protocol with one async method.

    Backend      `complete(request) -> list[Completion]`, plus its `namespace` (the cache's model key)
    Strategy     `solve(task, ctx) -> RunResult`
    Selector     `select(task, candidates, ctx, k) -> list[Candidate]` (best first)
    Scorer       `score(task, candidates, ctx) -> list[float]` (higher is better)
    Summarizer   `summarize(task, candidate, ctx) -> TrajectorySummary`
    TestWriter   `write_tests(task, ctx) -> list[str]` (model-written tests for a code task)

Concrete components are frozen pydantic configs registered by `kind` (`tts.registry`); anything
with the method works where a protocol is asked for. This module imports nothing at run time
beyond `typing`, so every other module may import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tts.context import RunContext
    from tts.records import Candidate, Completion, RunResult, Task, TrajectorySummary
    from tts.seam import ChatRequest


@runtime_checkable
class Backend(Protocol):
    """Anything that answers chat requests. Returns `request.n` completions.

    A backend also has a `namespace`: a string naming the model behind it and its endpoint (never
    a key), e.g. "openai:http://host:8000/v1:my-model". It is part of every cache key, so two
    backends for different models must have different namespaces; the wrappers refuse a backend
    without one (`ConfigError`) rather than guess.
    """

    namespace: str

    async def complete(self, request: ChatRequest) -> list[Completion]: ...


@runtime_checkable
class Strategy(Protocol):
    """A test-time scaling method: frozen configuration plus `solve`. Per-run state lives in `ctx`."""

    async def solve(self, task: Task, ctx: RunContext) -> RunResult: ...


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


@runtime_checkable
class TestWriter(Protocol):
    """Tests (assert lines) for a code task, written by a model."""

    async def write_tests(self, task: Task, ctx: RunContext) -> list[str]: ...


# role name -> (protocol, its one method): what the registry checks a component against
ROLES: dict[str, tuple[type, str]] = {
    "strategy": (Strategy, "solve"), "selector": (Selector, "select"), "scorer": (Scorer, "score"),
    "summarizer": (Summarizer, "summarize"), "test-writer": (TestWriter, "write_tests"),
}

__all__ = ["ROLES", "Backend", "Scorer", "Selector", "Strategy", "Summarizer", "TestWriter"]

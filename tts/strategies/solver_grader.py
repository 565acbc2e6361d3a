"""Solver-grader loop (docs/algorithms.md#solver-grader-loop, "Escaping the Cognitive Well").

S solvers run in parallel. Each solution is graded by a strict grader in a fresh conversation;
a grade at the threshold is accepted only when k more independent graders agree. Below it,
the grader's feedback goes back into the same solver conversation, for up to R more rounds.
The first `context_free` solvers never see feedback (or any injected context): each round
they start afresh, which keeps the group diverse (§6, contextual drag).

Trace roles: `solve` (a fresh attempt), `refine` (a revision in the same conversation),
`grade` (the first grader of an attempt), `confirm` (the k confirming graders).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, model_validator

from tts.answers import extract_answer
from tts.context import RunContext
from tts.prompts import render
from tts.records import CallRecord, Candidate, Message, Record, RunResult, Task
from tts.registry import register
from tts.strategies.base import Strategy
from tts.strategies.grading import Grade, GradeFormat, feedback_of, parse_grade


class Attempt(Record):
    """One graded solution and what its graders said."""

    id: str
    text: str
    phase: str
    """Where it was made: `solve` (phase 1), `loop2` (final solvers of loop 2), `loop2-assumed`, ..."""
    solver: int = 0
    round: int = 0
    with_context: bool = False
    """Whether the solver saw injected context (lemmas, a previous attempt or grader feedback)."""
    grade: float | None = None
    """The first grader's grade; None when its report had no parseable grade."""
    report: str = ""
    confirmations: list[float | None] = Field(default_factory=list)
    """The confirming graders' grades (None: unparseable, which counts as disagreement)."""
    accepted: bool = False
    """A grade at the threshold that every confirming grader agreed with."""
    open_conjectures: int = 0
    """Claims the attempt assumes that are not proven (conjecture extraction); fewer ranks higher."""
    order: int = 0
    """Creation order within the run, for "newer wins" ties."""

    @property
    def effective_grade(self) -> float:
        """The lowest grade any of its graders gave (-1 when unparseable): what ranking uses."""
        grades = [self.grade, *self.confirmations]
        return min((-1.0 if g is None else g) for g in grades)


class Verdict(Record):
    """What the graders made of one attempt."""

    grade: float | None
    report: str
    confirmations: list[float | None] = Field(default_factory=list)
    accepted: bool = False
    feedback: str = ""
    """What the solver hears next: the first dissenting confirmer's points, else the grader's."""


def rank(attempts: Iterable[Attempt]) -> list[Attempt]:
    """Best first: accepted, then by effective grade, then fewer open conjectures, then newer."""
    return sorted(attempts, key=lambda a: (a.accepted, a.effective_grade, -a.open_conjectures, a.order), reverse=True)


def usage_by_role(records: Iterable[CallRecord]) -> dict[str, dict[str, Any]]:
    """Calls and usage per trace role: the per-phase figures a run's metadata reports."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        row = out.setdefault(r.role, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0})
        row["calls"] += 1
        row["prompt_tokens"] += r.usage.prompt_tokens
        row["completion_tokens"] += r.usage.completion_tokens
        row["cost_usd"] += r.usage.cost_usd
    return out


class _Counter:
    """Per-run creation order, assigned after each group so it is reproducible (a strategy
    instance holds no run state)."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


class GradedSolving(Strategy):
    """The shared pieces: solver groups, strict grading, confirmation. Not registered itself."""

    solvers: int = Field(4, ge=1)
    """S: solvers in parallel."""
    rounds: int = Field(2, ge=0)
    """R: feedback rounds after the first attempt."""
    confirmations: int = Field(3, ge=0)
    """k: further independent graders that must all agree before a top grade is accepted."""
    grade_threshold: float = 7.0
    """The grade that counts as "top" (needs confirmation, ends a solver's rounds)."""
    context_free: int = Field(1, ge=0)
    """Solvers that never see injected context or feedback (they start afresh each round)."""
    solver_temperature: float = 0.6
    grader_temperature: float = 0.1
    grade_format: GradeFormat = Field(default_factory=GradeFormat)
    """How to read a grade from a report: regex with a `grade` group, and the maximum grade."""

    def needs(self) -> frozenset[str]:
        return frozenset({"text-only"})  # grades and reasons over text: no tools, no JSON format

    @model_validator(mode="after")
    def _threshold_in_range(self) -> GradedSolving:
        if not 0 < self.grade_threshold <= self.grade_format.max_grade:
            raise ValueError(f"grade_threshold must be in (0, {self.grade_format.max_grade}]")
        return self

    # -- grading ------------------------------------------------------------------------------
    async def grade_once(self, messages: list[Message], ctx: RunContext, *, role: str,
                         sample_index: int = 0) -> tuple[Grade | None, str]:
        comp = await ctx.complete(messages, role=role, sample_index=sample_index, temperature=self.grader_temperature)
        return parse_grade(comp.text, self.grade_format), comp.text

    async def grade_attempt(self, problem: str, solution: str, ctx: RunContext, *, sample: int = 0) -> Verdict:
        """Grade in a fresh conversation; a top grade goes to k confirming graders. `sample` numbers the
        attempt within the run: its graders get sample indices sample*(k+1) + 0..k, all distinct."""
        msgs = [Message(role="user", content=render("grader_grade.j2", self.prompts, problem=problem,
                                                    solution=solution, max_grade=_fmt(self.grade_format.max_grade)))]
        base = sample * (self.confirmations + 1)
        grade, report = await self.grade_once(msgs, ctx, role="grade", sample_index=base)
        value = None if grade is None else grade.value
        feedback = feedback_of(report, self.grade_format)
        if value is None or value < self.grade_threshold:
            return Verdict(grade=value, report=report, feedback=feedback)
        if self.confirmations == 0:
            return Verdict(grade=value, report=report, accepted=True, feedback=feedback)
        confirms = await asyncio.gather(*(self.grade_once(msgs, ctx, role="confirm", sample_index=base + j)
                                          for j in range(1, self.confirmations + 1)))
        values = [None if g is None else g.value for g, _ in confirms]
        rejecting = [rep for g, rep in confirms if g is None or g.value < self.grade_threshold]
        if rejecting:  # the dissenting grader's report is what the solver should hear next
            return Verdict(grade=value, report=report, confirmations=values,
                           feedback=feedback_of(rejecting[0], self.grade_format))
        return Verdict(grade=value, report=report, confirmations=values, accepted=True, feedback=feedback)

    # -- solving ------------------------------------------------------------------------------
    async def solver_run(self, problem: str, ctx: RunContext, *, index: int, rounds: int, context: str | None,
                         phase: str, sample_base: int = 0) -> list[Attempt]:
        """One solver: attempt, grade, and (unless context-free) revise on feedback in the same
        conversation, until a top grade is accepted or the rounds run out. Its calls use sample
        indices sample_base + r (r = round), so no two solvers of a run send the same request."""
        free = index < self.context_free

        def opening() -> list[Message]:
            text = render("solver_solve.j2", self.prompts, problem=problem, context=context or "")
            return [Message(role="user", content=text)]

        messages = opening()
        out: list[Attempt] = []
        for r in range(rounds + 1):
            role = "solve" if r == 0 or free else "refine"
            sample = sample_base + r
            comp = await ctx.complete(messages, role=role, sample_index=sample, temperature=self.solver_temperature)
            v = await self.grade_attempt(problem, comp.text, ctx.child("grade", replica=r), sample=sample)
            out.append(Attempt(id=f"{phase}-s{index}-r{r}", text=comp.text, phase=phase, solver=index, round=r,
                               with_context=not free and (context is not None or r > 0), grade=v.grade,
                               report=v.report, confirmations=v.confirmations, accepted=v.accepted))
            if v.accepted:
                break
            if free:
                messages = opening()  # a fresh start: no feedback, no history
            else:
                refine = render("solver_refine.j2", self.prompts, feedback=v.feedback or v.report,
                                grade="?" if v.grade is None else _fmt(v.grade),
                                max_grade=_fmt(self.grade_format.max_grade))
                messages = [*messages, Message(role="assistant", content=comp.text),
                            Message(role="user", content=refine)]
        return out

    async def solver_group(self, problem: str, ctx: RunContext, n: int, *, rounds: int, context: str | None,
                           phase: str, counter: _Counter, replica_prefix: str = "", sample_base: int = 0
                           ) -> list[Attempt]:
        """`n` solvers in parallel; the first `context_free` of them get no injected context.

        Identical requests must stay distinct samples (the context-free solver of every group sends
        the same prompt): solver i uses sample indices sample_base + i*(rounds+1) + round, so with a
        seed set each gets its own seed, and groups of one run pass disjoint `sample_base`s."""
        runs = await asyncio.gather(*(
            self.solver_run(problem, ctx.child("solver", replica=f"{replica_prefix}{i}"), index=i, rounds=rounds,
                            context=None if i < self.context_free else context, phase=phase,
                            sample_base=sample_base + i * (rounds + 1))
            for i in range(n)))
        # "newer" must not depend on which call happened to finish first: number by round, then solver
        attempts = sorted((a for run in runs for a in run), key=lambda a: (a.round, a.solver))
        return [a.model_copy(update={"order": counter.next()}) for a in attempts]

    def as_candidate(self, a: Attempt) -> Candidate:
        return Candidate(id=a.id, text=a.text, answer=extract_answer(a.text, self.answer_format),
                         score=a.effective_grade, metadata=a.model_dump(exclude={"text"}))


@register
class SolverGrader(GradedSolving):
    """S solvers with strict graders, k-grader confirmation and R feedback rounds (§4)."""

    kind: Literal["solver-grader"] = "solver-grader"

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        attempts = await self.solver_group(task.text, ctx, self.solvers, rounds=self.rounds, context=None,
                                           phase="solve", counter=_Counter())
        ranked = rank(attempts)
        best = ranked[0]
        return self.result(task, ctx, [self.as_candidate(best)], [self.as_candidate(a) for a in attempts],
                           accepted=best.accepted, best_grade=best.grade, phases=usage_by_role(ctx.records),
                           attempts=[a.model_dump() for a in attempts])


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)

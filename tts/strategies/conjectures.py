"""Conjecture extraction with context detachment (docs/algorithms.md#conjecture-extraction-with-context-detachment).

After a solver-grader phase, each loop: an extractor turns the gaps of the top attempts into
self-contained conjectures and their negations (validated JSON) plus a solution that assumes
them. Every conjecture and every negation is proved and graded in parallel in a fresh context
holding ONLY that statement: no problem, no attempt, no report, no history. Outcomes go into a
lemma memory (kept across loops, de-duplicated); final solvers get the proven lemmas, the
disproved claims and the best previous attempt (framed as another student's), one solver gets
none, and the best-graded attempt is kept under the same confirmation rule.

Trace roles: `solve`, `refine`, `grade`, `confirm` (as in solver-grader), `extract`,
`extract-repair`, `conjecture-solve`, `conjecture-grade`.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import ParseError
from tts.prompts import render
from tts.records import Message, RunResult, Task
from tts.registry import register
from tts.strategies.grading import parse_grade
from tts.strategies.lemmas import (
    Conjecture,
    ConjectureOutcome,
    Extraction,
    Lemma,
    LemmaMemory,
    LoopRecord,
    normalize_statement,
    outcome_status,
    parse_extraction,
)
from tts.strategies.solver_grader import Attempt, GradedSolving, _Counter, _fmt, rank, usage_by_role


@register
class ConjectureExtraction(GradedSolving):
    """Solver-grader, then up to L loops of extract -> detached verification -> final solvers (§5)."""

    kind: Literal["conjecture-extraction"] = "conjecture-extraction"
    loops: int = Field(3, ge=0)
    """L: extraction loops after the solver-grader phase."""
    final_solvers: int = Field(5, ge=1)
    """F: solvers per loop that get the lemmas (the first `context_free` of them get nothing)."""
    final_rounds: int = Field(0, ge=0)
    """Feedback rounds for the final solvers (0: one graded attempt each)."""
    top_k: int = Field(2, ge=1)
    """Attempts (with their grader reports) the extractor reads."""
    max_conjectures: int = Field(4, ge=1)
    lemma_threshold: float = 5.0
    """A statement counts as proven when its proof grades at least this."""
    extractor_temperature: float = 0.3
    extract_retries: int = Field(1, ge=0)
    """Extra extractor calls when its JSON is invalid (each is told what was wrong)."""
    stop_when_accepted: bool = True
    """Skip the remaining loops once an attempt has an accepted (confirmed) top grade."""

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        counter = _Counter()
        pool = await self.solver_group(task.text, ctx.child("phase1"), self.solvers, rounds=self.rounds,
                                       context=None, phase="solve", counter=counter)
        memory = LemmaMemory()
        loops: list[LoopRecord] = []
        for n in range(1, self.loops + 1):
            if self.stop_when_accepted and any(a.accepted for a in pool):
                break
            lctx = ctx.child(f"loop{n}")
            # disjoint sample indices for every solver group of the run (phase 1 used the first block)
            base = self.solvers * (self.rounds + 1) + (n - 1) * (self.final_solvers * (self.final_rounds + 1) + 1)
            rec, new = await self.loop(task.text, pool, memory, lctx, n, counter, base)
            pool.extend(new)
            loops.append(rec)
        ranked = rank(pool)
        best = ranked[0]
        return self.result(task, ctx, [self.as_candidate(best)], [self.as_candidate(a) for a in pool],
                           accepted=best.accepted, best_grade=best.grade, phases=usage_by_role(ctx.records),
                           lemma_memory=memory.model_dump(), loops=[r.model_dump() for r in loops],
                           attempts=[a.model_dump() for a in pool], loops_run=len(loops),
                           # flat copies that a trace file keeps (it drops nested metadata)
                           lemmas_proven=memory.statements("proven"), claims_disproved=memory.statements("disproved"),
                           claims_conflict=memory.statements("conflict"))

    async def loop(self, problem: str, pool: list[Attempt], memory: LemmaMemory, ctx: RunContext, n: int,
                   counter: _Counter, sample_base: int = 0) -> tuple[LoopRecord, list[Attempt]]:
        top = rank(pool)[: self.top_k]
        extraction, error = await self.extract(problem, top, memory, ctx.child("extract", replica=n), sample=n)
        fresh: list[Conjecture] = []
        seen: set[str] = set()
        for c in extraction.conjectures[: self.max_conjectures]:
            key = normalize_statement(c.statement)
            if key in seen or memory.find(c.statement) is not None or memory.find(c.negation) is not None:
                continue
            seen.add(key)
            fresh.append(c)
        skipped = min(len(extraction.conjectures), self.max_conjectures) - len(fresh)
        outcomes = await self.check_claims(fresh, ctx.child("verify"), loop=n)
        new_lemmas = sum(memory.add(o) for o in outcomes)

        best_prev = rank(pool)[0]
        context = render("conjecture_context.j2", self.prompts, lemmas=memory.statements("proven"),
                         avoid=memory.statements("disproved"), conflicts=memory.statements("conflict"),
                         previous=best_prev.text)
        jobs = [self.solver_group(problem, ctx.child("final"), self.final_solvers, rounds=self.final_rounds,
                                  context=context, phase=f"loop{n}", counter=counter,
                                  replica_prefix=f"loop{n}-", sample_base=sample_base)]
        if extraction.solution.strip():  # the block's last index is the assumed solution's
            assumed_sample = sample_base + self.final_solvers * (self.final_rounds + 1)
            jobs.append(self.grade_assumed(problem, extraction, memory, ctx.child("assumed", replica=n), n,
                                           assumed_sample))
        done = await asyncio.gather(*jobs)
        new = [a for group in done for a in group]
        if len(done) > 1:  # the assumed solution counts as newer than this loop's final attempts
            new[-1] = new[-1].model_copy(update={"order": counter.next()})
        best = rank(new)[0] if new else None
        rec = LoopRecord(loop=n, extraction_error=error, conjectures=fresh, skipped_known=skipped, outcomes=outcomes,
                         new_lemmas=new_lemmas, best_grade=None if best is None else best.grade,
                         accepted=any(a.accepted for a in new), calls_by_role=usage_by_role(ctx.records))
        return rec, new

    async def extract(self, problem: str, top: list[Attempt], memory: LemmaMemory,
                      ctx: RunContext, sample: int = 0) -> tuple[Extraction, str | None]:
        """The extractor's conjectures; on invalid JSON it is told why, up to `extract_retries` times.
        Gives up with an empty extraction (and the last error) rather than failing the run."""
        text = render("conjecture_extract.j2", self.prompts, problem=problem,
                      attempts=[{"text": a.text, "report": a.report,
                                 "grade": "?" if a.grade is None else _fmt(a.grade)} for a in top],
                      lemmas=memory.statements("proven"), avoid=memory.statements("disproved"),
                      max_conjectures=self.max_conjectures, max_grade=_fmt(self.grade_format.max_grade))
        messages = [Message(role="user", content=text)]
        error = None
        for attempt in range(self.extract_retries + 1):
            comp = await ctx.complete(messages, role="extract" if attempt == 0 else "extract-repair",
                                      sample_index=sample, temperature=self.extractor_temperature)
            try:
                return parse_extraction(comp.text), None
            except ParseError as exc:
                error = str(exc)
            repair = render("conjecture_repair.j2", self.prompts, error=error)
            messages = [*messages, Message(role="assistant", content=comp.text), Message(role="user", content=repair)]
        return Extraction(), error

    async def check_claims(self, claims: list[Conjecture], ctx: RunContext, loop: int = 0) -> list[ConjectureOutcome]:
        """Prove and grade every claim and every negation in parallel, each in a fresh context that
        holds only that statement. Usable on its own (see examples/claims_in_a_code_fix.py)."""
        results = await asyncio.gather(*(
            self.prove_alone(text, ctx.child("claim" if side == 0 else "negation", replica=f"{loop}.{j}"), loop)
            for j, c in enumerate(claims) for side, text in enumerate((c.statement, c.negation))))
        outcomes = []
        for j, c in enumerate(claims):
            (sg, sp), (ng, np_) = results[2 * j], results[2 * j + 1]
            ok = [g is not None and g >= self.lemma_threshold for g in (sg, ng)]
            outcomes.append(ConjectureOutcome(statement=c.statement, negation=c.negation,
                                              status=outcome_status(ok[0], ok[1]), statement_grade=sg,
                                              negation_grade=ng, statement_proof=sp, negation_proof=np_, loop=loop))
        return outcomes

    async def prove_alone(self, statement: str, ctx: RunContext, sample: int = 0) -> tuple[float | None, str]:
        """(grade, proof) of one statement; the requests contain nothing but the statement (and the proof).
        `sample` (the loop) keeps a claim retried in a later loop from repeating its earlier request."""
        prove = render("conjecture_prove.j2", self.prompts, statement=statement)
        proof = await ctx.complete([Message(role="user", content=prove)], role="conjecture-solve",
                                   sample_index=sample, temperature=self.solver_temperature)
        check = render("conjecture_grade.j2", self.prompts, statement=statement, proof=proof.text,
                       max_grade=_fmt(self.grade_format.max_grade))
        report = await ctx.complete([Message(role="user", content=check)], role="conjecture-grade",
                                    sample_index=sample, temperature=self.grader_temperature)
        grade = parse_grade(report.text, self.grade_format)
        return (None if grade is None else grade.value), proof.text

    async def grade_assumed(self, problem: str, extraction: Extraction, memory: LemmaMemory,
                            ctx: RunContext, n: int, sample: int = 0) -> list[Attempt]:
        """The extractor's solution, completed with the proofs of the conjectures now proven, graded
        like any attempt; the conjectures still unproven count against it in ties."""
        claims = extraction.conjectures[: self.max_conjectures]
        proven = [lemma for c in claims if (lemma := memory.find(c.statement)) is not None
                  and lemma.status == "proven"
                  and normalize_statement(lemma.statement) == normalize_statement(c.statement)]
        parts = [extraction.solution.strip()]
        if proven:
            parts.append("## Proofs of the conjectures used")
            parts += [f"Claim: {lemma.statement}\nProof: {lemma.proof}" for lemma in proven]
        text = "\n\n".join(parts)
        v = await self.grade_attempt(problem, text, ctx, sample=sample)
        return [Attempt(id=f"loop{n}-assumed", text=text, phase=f"loop{n}-assumed", with_context=True, grade=v.grade,
                        report=v.report, confirmations=v.confirmations, accepted=v.accepted,
                        open_conjectures=len(claims) - len(proven))]


__all__ = ["Conjecture", "ConjectureExtraction", "ConjectureOutcome", "Extraction", "Lemma", "LemmaMemory",
           "LoopRecord", "normalize_statement", "outcome_status", "parse_extraction"]

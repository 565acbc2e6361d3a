"""`check_claims`: each claim and its negation proved and graded by a model in a context that holds
only that statement (conjecture extraction's verifier, `ConjectureExtraction.check_claims`): the
checker never sees the caller's conversation, so it cannot be talked into the caller's belief.

Verdicts: `proven` (the claim's proof passed, its negation's did not), `disproved` (the reverse),
`conflict` (both passed), `open` (neither). With several checkers, each is an independent vote and
the verdict is the most common one (a tie: `open`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from pydantic import Field, ValidationError

from tts.mcp.tool_run import Budget, Service, ToolFailure, run_tool, usage_report
from tts.records import Record

PROOF_CHARS = 1500
"""A checker's proof is clipped to this in the result: enough to see why, not a book."""


class Claim(Record):
    statement: str = Field(min_length=1, description="the claim, self-contained (it is checked without any "
                                                     "other context)")
    negation: str | None = Field(None, description="its negation (default: 'It is not the case that: <claim>')")


def verifier(service: Service) -> Any:
    """The server's conjecture-extraction config when it runs that strategy, else the defaults."""
    from tts.strategies.conjectures import ConjectureExtraction

    strat = service.strategy
    return strat if isinstance(strat, ConjectureExtraction) else ConjectureExtraction()


def conjectures(claims: list[Claim | str], context: str | None) -> list[Any]:
    """The claims as validated Conjectures, the shared `context` (definitions) written into each."""
    from tts.strategies.lemmas import Conjecture

    out = []
    for i, c in enumerate(claims):
        claim = Claim(statement=c) if isinstance(c, str) else c
        statement = claim.statement.strip()
        negation = (claim.negation or f"It is not the case that: {statement}").strip()
        if context and context.strip():
            statement, negation = (f"{context.strip()}\n\nClaim: {s}" for s in (statement, negation))
        try:
            out.append(Conjecture(statement=statement, negation=negation))
        except (ValidationError, ValueError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ToolFailure(f"bad claims[{i}]: {reason.removeprefix('Value error, ')}") from None
    return out


async def check_claims(service: Service, claims: list[Claim | str], context: str | None = None, checkers: int = 1,
                       budget: Budget | None = None, progress: Any = None) -> dict[str, Any]:
    if not claims:
        raise ToolFailure("bad claims: give at least one claim to check")
    if not 1 <= checkers <= 9:
        raise ToolFailure(f"bad checkers: 1 to 9, got {checkers}")
    check = verifier(service)
    conj = conjectures(claims, context)

    async def job(ctx: Any) -> list[list[Any]]:
        return list(await asyncio.gather(*(check.check_claims(conj, ctx.child(f"checker{v}"), loop=v)
                                           for v in range(checkers))))

    by_checker, ctx = await run_tool(service, "check_claims", job, budget=budget,
                                     defaults=service.defaults_for([check]), progress=progress)
    results = []
    for j, c in enumerate(claims):
        outcomes = [by_checker[v][j] for v in range(checkers)]
        tally = Counter(o.status for o in outcomes)
        top = max(tally.values())
        leaders = [s for s in tally if tally[s] == top]
        first = outcomes[0]
        results.append({
            "claim": c if isinstance(c, str) else c.statement, "verdict": leaders[0] if len(leaders) == 1 else "open",
            "votes": [{"status": o.status, "claim_grade": o.statement_grade, "negation_grade": o.negation_grade}
                      for o in outcomes],
            "negation": first.negation, "claim_proof": first.statement_proof[:PROOF_CHARS],
            "negation_proof": first.negation_proof[:PROOF_CHARS]})
    return {"claims": results, "threshold": check.lemma_threshold, "max_grade": check.grade_format.max_grade,
            **usage_report(ctx, service)}

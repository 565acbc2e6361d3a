"""The bodies of `tts mcp`'s tools `solve` and `select`: plain async functions of the service and
the tool's arguments, returning JSON-able dicts (the MCP layer in `tts.mcp.toolserver` only
declares them). `check_claims` is in `tts.mcp.claims`."""

from __future__ import annotations

from typing import Any

from tts.answers import extract_answer, normalize
from tts.errors import ConfigError
from tts.mcp.ranking import ranking_of
from tts.mcp.tool_run import Budget, Service, ToolFailure, run_tool, usage_report
from tts.records import Candidate, RunResult, Task


def parse_spec(role: str, spec: Any, arg: str) -> Any:
    """A strategy or selector from a kind name or a spec object, validated as everywhere; a
    ToolFailure naming the argument and the field otherwise."""
    from tts.registry import build

    if isinstance(spec, str):
        spec = spec.strip()
    try:
        return build(role, spec)
    except ConfigError as exc:
        raise ToolFailure(f"bad {arg}: {exc}") from None


async def solve(service: Service, question: str, strategy: Any = None, budget: Budget | None = None,
                progress: Any = None) -> dict[str, Any]:
    strat = service.strategy if strategy is None else parse_spec("strategy", strategy, "strategy")
    if not question.strip():
        raise ToolFailure("bad question: it is empty")
    task = Task(id="solve", prompt=question)

    def spent(ctx: Any) -> str:
        part = strat.partial(task, ctx)
        return f" The partial answer (from {len(part.candidates)} candidates so far): {part.answer!r}."

    res, ctx = await run_tool(service, strat.name, lambda ctx: strat.solve(task, ctx), budget=budget,
                              defaults=service.defaults_for([strat]), progress=progress, on_spent=spent)
    return {"answer": res.answer, "text": res.best.text if res.best is not None else None,
            "strategy": _spec_of(strat), "candidates": len(res.candidates),
            "votes": _votes(res), "bracket": res.metadata.get("tournament"), "confidence": _confidence(res),
            **usage_report(ctx, service)}


def _spec_of(component: Any) -> dict[str, Any]:
    spec = component.model_dump(mode="json", exclude_defaults=True)
    spec["kind"] = component.kind
    return spec


def _votes(res: RunResult) -> dict[str, float] | None:
    """The answer tally, where the strategy voted (self-consistency, majority-based selectors)."""
    votes = res.metadata.get("votes")
    if isinstance(votes, dict):
        return votes
    if len(res.candidates) > 1:  # the answers the candidates gave, so an agent sees the agreement
        tally: dict[str, float] = {}
        for c in res.candidates:
            if c.answer is not None:
                tally[c.answer] = tally.get(c.answer, 0) + 1
        return tally or None
    return None


def _confidence(res: RunResult) -> float | None:
    """The chosen answer's geometric-mean token probability, where the backend returned logprobs."""
    from tts.selectors.rpc import path_probability

    return None if res.best is None else path_probability(res.best)


def default_selector() -> Any:
    from tts.selectors.judge import ListwiseJudge
    from tts.selectors.tournament import RTV

    # the caller's candidates (patches, plans) were written to be read whole: show the judge more of each
    return RTV(judge=ListwiseJudge(summary_tokens=2000))


def candidate_answer(text: str) -> str:
    """What `majority` groups by: an explicit answer line or boxed answer, else the whole text."""
    return extract_answer(text, "answer-line") or extract_answer(text, "boxed") or normalize(text)


async def select(service: Service, question: str, candidates: list[str], method: Any = None,
                 budget: Budget | None = None, progress: Any = None) -> dict[str, Any]:
    from tts.selectors.selection import decide

    selector = default_selector() if method is None else parse_spec("selector", method, "method")
    if len(candidates) < 2:
        raise ToolFailure(f"bad candidates: give at least 2 to select from, got {len(candidates)}")
    if any(not c.strip() for c in candidates):
        raise ToolFailure("bad candidates: candidate "
                          f"{next(i for i, c in enumerate(candidates) if not c.strip()) + 1} is empty")
    cands = [Candidate(id=str(i + 1), text=t, answer=candidate_answer(t)) for i, t in enumerate(candidates)]
    task = Task(id="select", prompt=question)
    k = 1 if getattr(selector, "kind", None) == "rtv" else len(cands)  # rtv: the whole bracket
    sel, ctx = await run_tool(service, f"select/{selector.kind}",
                              lambda ctx: decide(selector, task, cands, ctx, k), budget=budget,
                              defaults=service.defaults_for([selector]), progress=progress)
    ranking, contests = ranking_of(sel, cands)
    return {"winner": ranking[0]["id"], "winner_text": candidates[int(ranking[0]["id"]) - 1],
            "method": _spec_of(selector), "ranking": ranking, "contests": contests, **usage_report(ctx, service)}

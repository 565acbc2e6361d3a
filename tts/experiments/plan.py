"""A budget planner: a small cached pilot, then the configurations that fit a cost (and latency) budget.

The pilot runs a few tasks: self-consistency at the largest N of the grid (its samples are shared
by every smaller N and by RTV's candidates: same prompts, same sample indices, so the cache
answers them), and RTV at the smallest (N, V) to measure what a judge call costs. From the
measured mean cost and latency per call (per role: sample, judge) it projects, per configuration:

    self-consistency N:  N calls, 1 stage
    rtv N, V (G=2):      N + V(N-1) calls, 1 + ceil(log2 N) stages
    pdr M, R (top-k):    M samples + M(R-2) + 1 drafts on a workspace, R stages
    sequential-ref. R:   1 sample + R-1 refines, R stages

PDR and sequential refinement are measured on their smallest configuration (M=4, R=2; R=2):
their first round is the pilot's samples again (the cache answers it), so the pilot pays only
for what a call on a workspace costs (role `workspace-draft`: a PDR draft after round 1) and a
refine call (`refine`).

cost = calls x cost per call x tasks, latency = stages x measured latency per call (all calls of a
stage run in parallel). Configurations that fit are then run on the pilot tasks (cached) for
their pilot accuracy. Figures come from the accounting layer's prices (or `price=` per million
tokens for a model without a known price).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from tts.context import SamplingDefaults
from tts.errors import BackendError
from tts.records import CallRecord, Completion, Record, RunResult, Task, Usage
from tts.run import run_many

SC_GRID = (1, 2, 4, 8, 16)
RTV_GRID = ((4, 2), (4, 4), (8, 2), (8, 4), (8, 8), (16, 4), (16, 8))
PDR_GRID = ((4, 2), (8, 2), (16, 2), (4, 3), (8, 3))
"""(M drafts per round, R rounds): [M] * (R - 1) + [1], top-k distill (no distill call)."""
SR_GRID = (2, 3, 4)
STRATEGIES = ("self-consistency", "rtv", "pdr", "sequential-refinement")


class CallCost(Record):
    role: str
    calls: int = 0
    cost_usd: float = 0.0
    """Mean per call."""
    tokens: float = 0.0
    latency_s: float | None = None
    """Mean over calls that were sent (None when every pilot call came from the cache)."""


class PlanRow(Record):
    strategy: str
    config: dict[str, int]
    calls_per_task: int
    cost_usd: float
    """Projected, for all the tasks."""
    latency_s: float | None
    """Projected, per task."""
    fits: bool
    pilot_accuracy: float | None = None


class Plan(Record):
    tasks: int
    pilot_tasks: int
    max_cost: float
    max_latency: float | None = None
    costs: list[CallCost] = Field(default_factory=list)
    rows: list[PlanRow] = Field(default_factory=list)
    pilot_paid: Usage = Field(default_factory=Usage)
    notes: list[str] = Field(default_factory=list)

    @property
    def best(self) -> PlanRow | None:
        fit = [r for r in self.rows if r.fits and r.pilot_accuracy is not None]
        return max(fit, key=lambda r: (r.pilot_accuracy, -r.cost_usd)) if fit else None


def call_costs(results: Sequence[RunResult], role: str, price: Callable[[CallRecord], float],
               keep: Callable[[CallRecord], bool] | None = None, name: str | None = None) -> CallCost:
    """Mean cost of the pilot's calls of `role` (those `keep` accepts), reported as `name`."""
    recs = [c for r in results for c in r.trace if c.role == role and c.error is None and (keep is None or keep(c))]
    sent = [c.latency_s for c in recs if not c.cached]
    n = max(1, len(recs))
    return CallCost(role=name or role, calls=len(recs), cost_usd=sum(price(c) for c in recs) / n,
                    tokens=sum(_tokens(c) for c in recs) / n, latency_s=sum(sent) / len(sent) if sent else None)


def _tokens(rec: CallRecord) -> int:
    return rec.usage.prompt_tokens + rec.usage.completion_tokens


async def make_plan(tasks: Sequence[Task], backend: Any, *, max_cost: float, max_latency: float | None = None,
                    strategies: Sequence[str] = STRATEGIES, pilot: int = 3, defaults: SamplingDefaults | None = None,
                    seed: int = 0, price: Callable[[int, int], float] | None = None) -> Plan:
    """Run the pilot on the first `pilot` tasks and project every configuration onto all `tasks`.
    `price(prompt_tokens, completion_tokens)` in USD overrides the accounting layer's prices.
    The backend should have a cache (`make_backend(cache_dir=...)`): the pilot's configurations
    share their samples through it."""
    from tts.strategies import ParallelDistillRefine, SelfConsistency, SequentialRefinement, TournamentVoting
    from tts.wrappers import AccountingBackend

    acct = backend.find(AccountingBackend)
    before = acct.usage
    pilot_tasks = list(tasks[:pilot])
    plan = Plan(tasks=len(tasks), pilot_tasks=len(pilot_tasks), max_cost=max_cost, max_latency=max_latency)

    def cost_of(rec: CallRecord) -> float:
        u = rec.usage
        if price is not None:
            return price(u.prompt_tokens, u.completion_tokens)
        return acct.usage_of([Completion(text="", usage=u, model=acct.model)]).cost_usd

    async def run(strategy: Any) -> list[RunResult]:
        return await run_many(strategy, pilot_tasks, backend, defaults=defaults, seed=seed)

    top = max(SC_GRID)
    base = await run(SelfConsistency(n=top))
    costs = {"sample": call_costs(base, "sample", cost_of)}
    failed = [r for r in base if r.status == "error"]
    if failed and not costs["sample"].calls:  # nothing measured: a plan from it would be made up
        raise BackendError(f"every pilot call failed ({len(failed)} task(s)); first: {failed[0].task_id}: "
                           f"{failed[0].error}")
    if "rtv" in strategies:
        n0, v0 = RTV_GRID[0]
        costs["judge"] = call_costs(await run(TournamentVoting(n=n0, votes=v0)), "judge", cost_of)
    if "pdr" in strategies:
        m0, r0 = PDR_GRID[0]
        pilot_pdr = await run(ParallelDistillRefine(drafts=m0, rounds=r0, distill="top-k"))
        costs["workspace-draft"] = call_costs(pilot_pdr, "draft", cost_of, lambda c: "/round1" not in c.path,
                                              "workspace-draft")
    if "sequential-refinement" in strategies:
        costs["refine"] = call_costs(await run(SequentialRefinement(rounds=SR_GRID[0])), "refine", cost_of)
    if any(c.calls and not c.tokens for c in costs.values()):
        plan.notes.append("the pilot came from the cache, which keeps no token counts: clear it or use another "
                          "--cache-dir to measure cost")
    if any(c.latency_s is None for c in costs.values()):
        plan.notes.append("latency unknown: every pilot call came from the cache")
    if not any(c.cost_usd for c in costs.values()):
        plan.notes.append("no price known for this model: every cost is $0 (give --price IN,OUT per million tokens)")
    plan.costs = list(costs.values())

    def project(strategy: str, config: dict[str, int], calls_by_role: dict[str, int],
                stages: dict[str, int]) -> PlanRow:
        per_task = sum(calls_by_role.values())
        cost = sum(k * costs[r].cost_usd for r, k in calls_by_role.items()) * len(tasks)
        lat = None
        if all(costs[r].latency_s is not None for r in stages):
            lat = sum(k * (costs[r].latency_s or 0.0) for r, k in stages.items())
        fits = cost <= max_cost and (max_latency is None or lat is None or lat <= max_latency)
        return PlanRow(strategy=strategy, config=config, calls_per_task=per_task, cost_usd=cost, latency_s=lat,
                       fits=fits)

    rows: list[tuple[PlanRow, Any]] = []
    if "self-consistency" in strategies:
        for n in SC_GRID:
            rows.append((project("self-consistency", {"n": n}, {"sample": n}, {"sample": 1}), SelfConsistency(n=n)))
    if "rtv" in strategies:
        for n, v in RTV_GRID:
            rows.append((project("rtv", {"n": n, "votes": v}, {"sample": n, "judge": v * (n - 1)},
                                 {"sample": 1, "judge": math.ceil(math.log2(n))}), TournamentVoting(n=n, votes=v)))
    if "pdr" in strategies:
        for m, r in PDR_GRID:
            rows.append((project("pdr", {"drafts": m, "rounds": r}, {"sample": m, "workspace-draft": m * (r - 2) + 1},
                                 {"sample": 1, "workspace-draft": r - 1}),
                         ParallelDistillRefine(drafts=m, rounds=r, distill="top-k")))
    if "sequential-refinement" in strategies:
        for r in SR_GRID:
            rows.append((project("sequential-refinement", {"rounds": r}, {"sample": 1, "refine": r - 1},
                                 {"sample": 1, "refine": r - 1}), SequentialRefinement(rounds=r)))
    for row, strategy in rows:
        if row.fits:
            results = base if row.strategy == "self-consistency" and row.config["n"] == top else await run(strategy)
            graded = [r.correct for r in results if r.correct is not None]
            row.pilot_accuracy = sum(graded) / len(graded) if graded else None
    plan.rows = [r for r, _ in rows]
    after = acct.usage
    paid = Usage(prompt_tokens=after.prompt_tokens - before.prompt_tokens,
                 completion_tokens=after.completion_tokens - before.completion_tokens,
                 calls=after.calls - before.calls, cost_usd=after.cost_usd - before.cost_usd)
    if price is not None:
        paid.cost_usd = price(paid.prompt_tokens, paid.completion_tokens)
    plan.pilot_paid = paid
    return plan

"""The baseline: one sample, its answer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.records import Candidate, RunResult, Task
from tts.registry import register
from tts.strategies.base import Strategy


@register
class SingleSample(Strategy):
    kind: Literal["single"] = "single"
    n_per_request: int | None = Field(None, ge=1)
    """When drawing several samples: samples per request (`n=K` on the wire where the backend
    supports it). None: the run's default (`SamplingDefaults.n_per_request`, CLI --n-per-request)."""

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        comp = await ctx.complete(task.as_messages(), role="sample")
        cand = self.candidate(comp, "s0")
        return self.result(task, ctx, [cand], [cand])

    async def generate(self, task: Task, ctx: RunContext, n: int, start: int = 0) -> list[Candidate]:
        # Plain samples with distinct sample indices: strategies that draw N samples of the same
        # prompt share them through the cache (self-consistency@8 and best-of-8 see the same 8).
        comps = await ctx.sample(task.as_messages(), n, role="sample", start=start, per_request=self.n_per_request)
        return [self.candidate(c, f"s{i}") for i, c in enumerate(comps, start=start)]

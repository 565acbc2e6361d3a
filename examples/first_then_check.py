"""A strategy of your own, as a plugin: a draft, then one call that checks it (docs/strategies.md).

    tts --plugin examples/first_then_check.py run examples/arithmetic.jsonl --model local --strategy first-then-check
"""

from typing import Literal

from tts import RunContext, RunResult, Strategy, Task, register


@register
class FirstThenCheck(Strategy):
    kind: Literal["first-then-check"] = "first-then-check"

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        draft = await ctx.complete(task.as_messages(), role="draft")
        check = await ctx.complete([*task.as_messages(), {"role": "assistant", "content": draft.text},
                                    {"role": "user", "content": "Check it. End with ANSWER: x"}], role="refine")
        cand = self.candidate(check, "c0")
        return self.result(task, ctx, [cand], [cand])

"""A stopped task keeps its answer: after a cap, a cancellation or a timeout, each strategy answers
from the real candidates it has (never from a judge vote, a distill or a grade), counts every
answered call, and says why it stopped."""

from __future__ import annotations

import asyncio
import re

import pytest

import tts
from tts.build import stack_wrappers
from tts.records import CallRecord, Task
from tts.run import run_task
from tts.testing import ScriptedBackend, request_text

TASK = Task(id="t", prompt="What is 2 + 3?", answer="5")
# Replies that are not attempts carry tempting "answers" (2, 77, 99): none may become a candidate's.
NOT_CANDIDATES = ("WINNER", "Final Grade", "Summary of the drafts")


class Replies:
    """Scripted model: attempts answer 5 (sample i waits 10 ms * (i+1)), the rest answer otherwise."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.answered = 0

    async def __call__(self, request) -> str:
        if self.delay:
            await asyncio.sleep(self.delay * (request.sample_index % 8 + 1))
        text = request_text(request)
        self.answered += 1
        if "strict grader" in text:
            return "Areas for improvement: all of it.\nFinal Grade: 3/7\nANSWER: 99"
        if "WINNER" in text:
            return "WINNER: 2"
        if "summar" in text.lower() or "distill" in text.lower():
            return "Summary of the drafts: most say 77.\nANSWER: 77"
        return "2 plus 3 is 5.\nANSWER: 5"


STRATEGIES = {
    "self-consistency": (tts.SelfConsistency(n=8), 5),
    "best-of-n": (tts.BestOfN(n=4, selector={"kind": "listwise-judge"}), 4),
    "rtv": (tts.TournamentVoting(n=4, votes=2), 6),
    "pdr": (tts.ParallelDistillRefine(drafts=[3, 1], distill="summary"), 4),
    "solver-grader": (tts.SolverGrader(solvers=2, rounds=1, confirmations=1), 3),
}


def check_candidates(res: tts.RunResult) -> None:
    assert res.candidates, "the calls it had answered are kept"
    for c in res.candidates:
        assert not any(marker in c.text for marker in NOT_CANDIDATES), c.text
        assert c.answer == "5"
    assert res.answer == "5" and res.correct is True


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_cap_keeps_the_answer(name: str) -> None:
    strategy, cap = STRATEGIES[name]
    replies = Replies()
    inner = ScriptedBackend(replies)
    res = await run_task(strategy, TASK, stack_wrappers(inner, max_calls=cap, pricing=False))
    assert res.status == "budget_exceeded" and "max_calls" in (res.error or "")
    check_candidates(res)
    assert res.usage.calls == replies.answered == cap  # every answered call is counted
    assert res.usage.total_tokens == sum(r.usage.total_tokens for r in res.trace) > 0


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_cancellation_keeps_the_answer(name: str) -> None:
    strategy, cap = STRATEGIES[name]
    replies = Replies(delay=0.01)
    cancel = asyncio.Event()
    seen: list[CallRecord] = []

    def on_call(rec: CallRecord) -> None:
        seen.append(rec)
        if len(seen) >= cap:
            cancel.set()

    res = await run_task(strategy, TASK, stack_wrappers(ScriptedBackend(replies), pricing=False), cancel=cancel,
                         on_call=on_call)
    assert res.status == "cancelled"
    check_candidates(res)
    assert res.usage.calls == replies.answered  # answered before the cancellation, all counted


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_timeout_keeps_the_answer(name: str) -> None:
    strategy, _ = STRATEGIES[name]
    replies = Replies(delay=0.05)
    res = await run_task(strategy, TASK, stack_wrappers(ScriptedBackend(replies), pricing=False), timeout=0.17)
    assert res.status == "timeout" and "0.17 s" in (res.error or "")
    check_candidates(res)
    assert res.usage.calls == replies.answered


async def test_a_partial_result_without_any_answered_call_has_no_answer() -> None:
    res = await run_task(tts.SelfConsistency(n=4), TASK, stack_wrappers(ScriptedBackend(Replies()), max_calls=0,
                                                                       pricing=False))
    assert res.status == "budget_exceeded" and res.answer is None and res.candidates == []
    assert res.usage.calls == 0


async def test_rtv_picks_among_the_survivors_so_far() -> None:
    # 8 candidates, five say 5 and three say 6; the judge always prefers a 6. Round 1 (two groups of
    # 4) finishes, round 2 is refused by the cap: the survivors both say 6, so the answer is 6,
    # where a majority over all candidates would say 5.
    answers = iter(["ANSWER: 5"] * 5 + ["ANSWER: 6"] * 3)

    def reply(request) -> str:
        text = request_text(request)
        if "WINNER" in text:
            shown = re.findall(r"## Candidate (\d+)\n(.*?)(?=\n## Candidate|\n# Instructions)", text, re.S)
            return "WINNER: " + next((i for i, body in shown if "6" in body), "1")
        return next(answers)

    strategy = tts.TournamentVoting(n=8, group_size=4, votes=1)
    res = await run_task(strategy, TASK, stack_wrappers(ScriptedBackend(reply), max_calls=10, pricing=False))
    assert res.status == "budget_exceeded" and len(res.candidates) == 8
    assert [r.role for r in res.trace].count("judge") == 2
    assert res.answer == "6"


async def test_python_run_seed_seeds_sampling() -> None:
    inner = ScriptedBackend(["ANSWER: 5"])
    await tts.SelfConsistency(n=3).run(TASK, stack_wrappers(inner, pricing=False), seed=1)
    assert [r.seed for r in inner.requests] == [1, 2, 3]
    with pytest.raises(tts.ConfigError, match="disagree"):
        await tts.SingleSample().run(TASK, inner, seed=1, defaults=tts.SamplingDefaults(seed=2))

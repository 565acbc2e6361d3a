"""Budgets as a contract: the cap drill against a loopback server with litellm's prices, and the
reservation rules of AccountingBackend."""

from __future__ import annotations

import asyncio
import json

import pytest

from tts._litellm import import_litellm
from tts.build import stack_wrappers
from tts.errors import BudgetExceeded
from tts.records import Message
from tts.seam import ChatRequest
from tts.testing import LoopbackServer, ScriptedBackend
from tts.testing.drill import cap_drill, list_price
from tts.wrappers import AccountingBackend
from tts.wrappers.accounting import prompt_token_bound

# Caps that stop a 24-task self-consistency@8 run (192 calls) part way, for the three kinds.
CAPS = {"max_cost": 0.0002, "max_tokens_total": 1500, "max_calls": 37}


@pytest.mark.parametrize("in_flight", [1, 16, 64])
@pytest.mark.parametrize("kind", list(CAPS))
async def test_cap_holds_at_the_server(kind: str, in_flight: int) -> None:
    out, results = await cap_drill(kind, CAPS[kind], in_flight)
    assert out.stopped_tasks > 0, "the cap must bite for the drill to mean anything"
    assert out.server_spend > 0.5 * out.cap, "the run used a fair part of its budget"
    assert out.overshoot == 0, f"{kind}: the server served {out.server_spend} past the cap {out.cap}"
    assert out.adds_up, (out.results, out.server_prompt_tokens, out.server_completion_tokens, out.server_calls)
    assert out.tasks_with_answer == out.answered_tasks  # a stopped task keeps its answer
    for r in results:
        assert r.paid == r.usage  # no cache: everything consumed was paid
        if kind == "max_cost":
            assert r.usage.cost_usd == pytest.approx(list_price("gpt-4o-mini", r.usage.prompt_tokens,
                                                                r.usage.completion_tokens))


async def test_result_cost_is_the_list_price() -> None:
    out, results = await cap_drill("max_calls", 1000, 16, tasks=4, samples=2)
    assert out.stopped_tasks == 0
    total = sum(r.usage.cost_usd for r in results)
    assert total > 0 and total == pytest.approx(out.server_cost_usd)
    assert all(r.usage.unpriced_calls == 0 for r in results)


async def test_prompt_bound_holds_against_the_server_count() -> None:
    texts = ["hi", "What is 2 + 3?", "ünïcödé ✓ " * 40, json.dumps({"a": [1, 2, 3]}) * 30, "x" * 5000]
    async with LoopbackServer() as server:
        from tts.backends.openai_http import OpenAIHTTPBackend

        b = OpenAIHTTPBackend("loop", server.url)
        try:
            for text in texts:
                req = ChatRequest(messages=[Message(role="system", content="be brief"),
                                            Message(role="user", content=text)], max_tokens=4)
                out = await b.complete(req)
                assert out[0].usage.prompt_tokens <= prompt_token_bound(req)
                assert out[0].usage.completion_tokens <= 4
        finally:
            await b.aclose()


async def test_litellm_token_counter_is_below_the_bound() -> None:
    litellm = import_litellm()  # offline: a bare `import litellm` fetches its price list in a background thread
    for text in ["hi", "ünïcödé ✓ " * 40, "def f(x):\n    return x ** 2\n" * 50, "日本語のテキスト" * 30]:
        msgs = [{"role": "user", "content": text}]
        counted = litellm.token_counter(model="gpt-4o-mini", messages=msgs)
        assert counted <= prompt_token_bound(ChatRequest(messages=[Message(**m) for m in msgs]))


async def test_a_call_waits_for_reservations_instead_of_failing() -> None:
    # Two slots' worth of worst case fits the cap, three do not; answers are small, so all 6 calls
    # fit once the reservations settle: none may be refused merely because others are in flight.
    inner = ScriptedBackend(["ok"], latency=0.02)
    worst = prompt_token_bound(ChatRequest(messages=[Message(role="user", content="0")], max_tokens=8)) + 8
    stack = stack_wrappers(inner, max_tokens_total=2 * worst + 10, pricing=False)
    outs = await asyncio.gather(*(stack.complete(ChatRequest(messages=[Message(role="user", content=str(i))],
                                                             max_tokens=8)) for i in range(6)),
                                return_exceptions=True)
    assert not any(isinstance(o, BaseException) for o in outs)
    assert inner.calls == 6


async def test_unbounded_and_unpriced_are_said_once(caplog: pytest.LogCaptureFixture) -> None:
    acct = AccountingBackend(ScriptedBackend(["ok"], model="my-model"), max_cost_usd=1.0, max_tokens=10_000,
                             pricing=False)
    for i in range(3):
        await acct.complete(ChatRequest(messages=[Message(role="user", content=str(i))]))
    lines = [r.getMessage() for r in caplog.records if r.name == "tts.budget"]
    assert sum("without max_tokens" in m for m in lines) == 1
    assert sum("no price known for model 'my-model'" in m and "max_cost cannot apply" in m for m in lines) == 1


async def test_cap_refusal_names_the_cap() -> None:
    acct = AccountingBackend(ScriptedBackend(["ok"]), max_tokens=10, pricing=False)
    with pytest.raises(BudgetExceeded, match="max_tokens=10"):
        await acct.complete(ChatRequest(messages=[Message(role="user", content="q")], max_tokens=4))

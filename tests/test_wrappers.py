"""The backend wrappers and their order, on the scripted backend (no network, no litellm)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tts.build import stack_wrappers
from tts.context import RunContext
from tts.errors import AuthError, BudgetExceeded, CallTimeout, PermanentError, RateLimited, ServerError
from tts.records import Completion, Message, Usage
from tts.seam import ChatRequest
from tts.testing import ScriptedBackend
from tts.wrappers import AccountingBackend, CacheBackend, RetryBackend, ThrottleBackend
from tts.wrappers.accounting import prompt_token_bound
from tts.wrappers.throttle import TokenBucket, estimate_tokens


def req(text: str = "What is 2 + 3?", **kw) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **kw)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Failing:
    """Raises the scripted errors for a prompt, in order, then answers "ok <prompt>"."""

    def __init__(self, errors: dict[str, list[BaseException]] | None = None, latency: float = 0.0) -> None:
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        self.latency = latency
        self.sent: list[str] = []
        self.namespace = "failing"

    async def complete(self, request: ChatRequest) -> list[Completion]:
        text = str(request.messages[-1].content)
        self.sent.append(text)
        if self.latency:
            await asyncio.sleep(self.latency)
        queue = self.errors.get(text)
        if queue:
            raise queue.pop(0)
        return [Completion(text=f"ok {text}", usage=Usage(prompt_tokens=10, completion_tokens=5, calls=1),
                           sample_index=request.sample_index)]


# -- cache ----------------------------------------------------------------------------------------

async def test_cache_keys_differ_by_sample_index_and_replica(tmp_path: Path) -> None:
    inner = ScriptedBackend(lambda r: f"sample {r.sample_index} replica {r.replica!r}")
    cache = CacheBackend(inner, tmp_path)
    variants = [req(), req(sample_index=1), req(replica="0.1"), req(sample_index=1, replica="0.1"), req(seed=3),
                req(temperature=0.2)]
    first = [(await cache.complete(r))[0] for r in variants]
    assert inner.calls == 6
    assert len({cache.key(r) for r in variants}) == 6
    again = [(await cache.complete(r))[0] for r in variants]
    assert inner.calls == 6  # all hits
    assert [c.text for c in again] == [c.text for c in first]
    assert again[1].text == "sample 1 replica ''" and again[1].sample_index == 1
    assert (cache.hits, cache.misses) == (6, 6)


async def test_cache_hit_carries_its_usage_and_is_flagged(tmp_path: Path) -> None:
    cache = CacheBackend(ScriptedBackend(["four"]), tmp_path)
    miss = (await cache.complete(req()))[0]
    hit = (await cache.complete(req()))[0]
    assert miss.cached is False and miss.usage.calls == 1 and miss.usage.total_tokens > 0
    assert hit.cached is True and hit.text == "four" and hit.latency_s == 0.0
    # what the answer consumed, as on the cold call; the flag says this run did not pay for it
    assert hit.usage == miss.usage.model_copy(update={"cached_calls": 1})


async def test_cache_n_choices_one_cached_call(tmp_path: Path) -> None:
    cache = CacheBackend(ScriptedBackend(["a", "b"]), tmp_path)
    await cache.complete(req(n=2))
    hit = await cache.complete(req(n=2))
    assert [c.text for c in hit] == ["a", "b"]
    # one call with its usage, served from the cache
    assert Usage.total(c.usage for c in hit).cached_calls == 1
    assert Usage.total(c.usage for c in hit).calls == 1


async def test_cache_survives_a_new_process(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from tts.seam import ChatRequest\nfrom tts.records import Message\n"
        "from tts.testing import ScriptedBackend\nfrom tts.wrappers import CacheBackend\n"
        "b = CacheBackend(ScriptedBackend(['from the other process']), sys.argv[1])\n"
        "asyncio.run(b.complete(ChatRequest(messages=[Message(role='user', content='What is 2 + 3?')])))\n"
        "b.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    inner = ScriptedBackend([RuntimeError("must not be called")])
    out = await CacheBackend(inner, tmp_path).complete(req())
    assert out[0].text == "from the other process" and out[0].cached
    assert inner.calls == 0


async def test_cache_stores_only_successes(tmp_path: Path) -> None:
    inner = ScriptedBackend([ServerError("boom"), "fine"])
    cache = CacheBackend(inner, tmp_path)
    with pytest.raises(ServerError):
        await cache.complete(req())
    assert (await cache.complete(req()))[0].text == "fine"
    assert (await cache.complete(req()))[0].cached
    assert inner.calls == 2


async def test_identical_requests_in_flight_are_sent_once(tmp_path: Path) -> None:
    inner = ScriptedBackend(["once"], latency=0.05)
    cache = CacheBackend(inner, tmp_path)
    outs = await asyncio.gather(*(cache.complete(req()) for _ in range(5)))
    assert inner.calls == 1
    assert [o[0].text for o in outs] == ["once"] * 5
    assert sum(o[0].cached for o in outs) == 4


async def test_cancelled_sender_hands_over_to_a_waiting_duplicate(tmp_path: Path) -> None:
    inner = ScriptedBackend(["answer"], latency=0.1)
    cache = CacheBackend(inner, tmp_path)
    first = asyncio.create_task(cache.complete(req()))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(cache.complete(req()))
    await asyncio.sleep(0.01)
    first.cancel()
    out = await second
    assert out[0].text == "answer" and not out[0].cached  # it had to send the request itself
    assert inner.calls == 2 and first.cancelled()
    assert (await cache.complete(req()))[0].cached


async def test_entries_are_on_disk_before_the_answer_is_returned(tmp_path: Path) -> None:
    cache = CacheBackend(ScriptedBackend(lambda r: f"a{r.sample_index}"), tmp_path)
    await asyncio.gather(*(cache.complete(req(sample_index=i)) for i in range(20)))
    other = CacheBackend(ScriptedBackend([RuntimeError("not cached")]), tmp_path)  # a second handle on the dir
    assert [other.lookup(req(sample_index=i))[0].text for i in range(20)] == [f"a{i}" for i in range(20)]


async def test_a_slow_commit_does_not_hold_up_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries are committed by the writer thread: while a (slow) commit runs, the loop goes on
    with other work, and the answer still comes back only once its entry is on disk."""
    import diskcache

    cache = CacheBackend(ScriptedBackend(["slowly stored"]), tmp_path)
    real_set = diskcache.Cache.set

    def slow_set(self, key, value, *args, **kwargs):  # a disk that takes 0.3 s per write
        time.sleep(0.3)
        return real_set(self, key, value, *args, **kwargs)

    monkeypatch.setattr(diskcache.Cache, "set", slow_set)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    await asyncio.sleep(0.35)  # the writer's own first write (at open) is done
    ticks = 0
    started = time.perf_counter()
    out = await cache.complete(req())
    waited = time.perf_counter() - started
    beat.cancel()
    assert out[0].text == "slowly stored" and waited >= 0.3  # returned once stored
    assert ticks >= 10  # the loop kept running meanwhile (on the loop, a commit would freeze it: 0 ticks)
    other = CacheBackend(ScriptedBackend([RuntimeError("not cached")]), tmp_path)
    assert other.lookup(req())[0].text == "slowly stored"
    cache.close()
    other.close()


async def test_an_entry_being_committed_is_a_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request identical to one whose answer the writer is still committing is served that
    answer: it is not sent again."""
    import diskcache

    inner = ScriptedBackend(["once", RuntimeError("sent twice")])
    cache = CacheBackend(inner, tmp_path)
    await asyncio.sleep(0.1)  # the writer's own first write (at open) is done
    real_set = diskcache.Cache.set

    def slow_set(self, key, value, *args, **kwargs):
        time.sleep(0.3)
        return real_set(self, key, value, *args, **kwargs)

    monkeypatch.setattr(diskcache.Cache, "set", slow_set)
    first = asyncio.create_task(cache.complete(req()))
    await asyncio.sleep(0.1)  # answered, its entry being committed
    assert inner.calls == 1 and not first.done()
    second = await cache.complete(req())
    assert second[0].text == "once" and second[0].cached and inner.calls == 1
    assert (await first)[0].text == "once"
    cache.close()


async def test_cache_key_and_file_hold_no_secret(tmp_path: Path) -> None:
    from tts.backends.openai_http import OpenAIHTTPBackend

    base = OpenAIHTTPBackend("m", "http://127.0.0.1:9/v1", api_key="sk-very-secret")
    assert "sk-very-secret" not in base.namespace
    cache = CacheBackend(base, tmp_path)
    cache._disk.set(cache.key(req()), b"[]")
    cache.close()
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert b"sk-very-secret" not in f.read_bytes()


# -- retry ----------------------------------------------------------------------------------------

async def test_retry_counts_and_honours_retry_after() -> None:
    inner = Failing({"q": [ServerError("500"), RateLimited("429", retry_after=2.5), ServerError("503")]})
    sleep = FakeSleep()
    retry = RetryBackend(inner, max_attempts=8, base_delay=0.5, max_delay=30, sleep=sleep)
    out = await retry.complete(req("q"))
    assert out[0].text == "ok q"
    assert inner.sent == ["q"] * 4
    assert retry.retries == 3
    assert len(sleep.delays) == 3
    assert 0 <= sleep.delays[0] <= 0.5  # full jitter, attempt 1: up to base_delay
    assert sleep.delays[1] == 2.5  # Retry-After, above the jittered backoff (at most 1.0 here)
    assert 0 <= sleep.delays[2] <= 2.0  # attempt 3: up to base * 4


async def test_retry_after_is_capped() -> None:
    sleep = FakeSleep()
    retry = RetryBackend(Failing({"q": [RateLimited("429", retry_after=3600)]}), max_delay=5, sleep=sleep)
    await retry.complete(req("q"))
    assert sleep.delays == [5]


@pytest.mark.parametrize("error", [PermanentError("400 bad", status=400), AuthError("401", status=401),
                                   ValueError("a bug")])
async def test_never_retries_permanent_errors(error: BaseException) -> None:
    inner = Failing({"q": [error]})
    retry = RetryBackend(inner, sleep=FakeSleep())
    with pytest.raises(type(error)):
        await retry.complete(req("q"))
    assert inner.sent == ["q"]
    assert retry.retries == 0


async def test_retry_gives_up_after_max_attempts_with_last_error() -> None:
    inner = Failing({"q": [ServerError(f"fail {i}") for i in range(10)]})
    retry = RetryBackend(inner, max_attempts=4, sleep=FakeSleep())
    with pytest.raises(ServerError, match="fail 3"):
        await retry.complete(req("q"))
    assert len(inner.sent) == 4 and retry.retries == 3


async def test_per_call_timeout_is_retried() -> None:
    class SlowOnce(Failing):
        async def complete(self, request: ChatRequest) -> list[Completion]:
            self.sent.append("q")
            if len(self.sent) == 1:
                await asyncio.sleep(5)
            return [Completion(text="late but fine")]

    inner = SlowOnce()
    retry = RetryBackend(inner, timeout=0.05, sleep=FakeSleep())
    started = time.perf_counter()
    assert (await retry.complete(req()))[0].text == "late but fine"
    assert time.perf_counter() - started < 2
    assert len(inner.sent) == 2 and retry.errors["CallTimeout"] == 1

    always = RetryBackend(ScriptedBackend(["x"], latency=5), max_attempts=2, timeout=0.05, sleep=FakeSleep())
    with pytest.raises(CallTimeout):
        await always.complete(req())


# -- throttle -------------------------------------------------------------------------------------

class Gauge:
    def __init__(self, latency: float = 0.02) -> None:
        self.now = self.peak = self.calls = 0
        self.latency = latency
        self.namespace = "gauge"

    async def complete(self, request: ChatRequest) -> list[Completion]:
        self.calls += 1
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(self.latency)
        self.now -= 1
        return [Completion(text="x", usage=Usage(prompt_tokens=3, completion_tokens=2, calls=1))]


async def test_throttle_bounds_in_flight_exactly() -> None:
    gauge = Gauge()
    throttle = ThrottleBackend(gauge, concurrency=5)
    await asyncio.gather(*(throttle.complete(req(str(i))) for i in range(40)))
    assert gauge.calls == 40
    assert gauge.peak == 5 and throttle.max_in_flight == 5


async def test_throttle_rpm_spaces_requests() -> None:
    gauge = Gauge(latency=0)
    throttle = ThrottleBackend(gauge, concurrency=10, rpm=2)
    throttle._requests.period = 0.3  # the same sliding window, shrunk from a minute for the test
    started = time.perf_counter()
    await asyncio.gather(*(throttle.complete(req(str(i))) for i in range(3)))
    assert 0.3 <= time.perf_counter() - started < 1.5  # the third request waited for the window


async def test_token_bucket_waits_and_corrects() -> None:
    bucket = TokenBucket(6000)  # 100 tokens a second
    started = time.perf_counter()
    await bucket.take(6000)
    assert time.perf_counter() - started < 0.05
    await bucket.take(20)
    assert 0.15 <= time.perf_counter() - started < 1.0
    level = bucket.level
    bucket.settle(estimated=100, actual=10)  # over-estimated by 90: refunded
    assert bucket.level >= level + 90 - 1e-6
    assert estimate_tokens(req("x" * 400, max_tokens=50, n=2)) == 100 + 100


async def test_throttle_wait_does_not_count_against_the_call_timeout() -> None:
    inner = ScriptedBackend(["ok"], latency=0.1)
    stack = RetryBackend(ThrottleBackend(inner, concurrency=1), max_attempts=1, timeout=0.25)
    outs = await asyncio.gather(*(stack.complete(req(str(i))) for i in range(5)))  # last one queues ~0.4 s
    assert len(outs) == 5 and inner.calls == 5
    # ... but the clock does run once the call is sent
    hung = RetryBackend(ThrottleBackend(ScriptedBackend(["late"], latency=5), concurrency=1), max_attempts=1,
                        timeout=0.1)
    started = time.perf_counter()
    with pytest.raises(CallTimeout):
        await hung.complete(req())
    assert time.perf_counter() - started < 1


# -- accounting and budget -----------------------------------------------------------------------

async def test_cap_stops_the_next_call_and_carries_usage() -> None:
    inner = ScriptedBackend(["a"])
    acct = AccountingBackend(inner, max_calls=3, pricing=False)
    for i in range(3):
        await acct.complete(req(str(i)))
    with pytest.raises(BudgetExceeded, match="max_calls=3") as info:
        await acct.complete(req("3"))
    assert inner.calls == 3
    assert info.value.usage.calls == 3 and info.value.usage.prompt_tokens > 0


async def test_concurrent_calls_never_exceed_max_calls() -> None:
    gauge = Gauge(latency=0.05)
    acct = AccountingBackend(gauge, max_calls=5, pricing=False)
    outs = await asyncio.gather(*(acct.complete(req(str(i))) for i in range(20)), return_exceptions=True)
    assert gauge.calls == 5
    assert sum(isinstance(o, BudgetExceeded) for o in outs) == 15
    assert acct.usage.calls == 5


async def test_failed_call_releases_its_reservation() -> None:
    inner = ScriptedBackend([ServerError("boom"), "ok"])
    acct = AccountingBackend(inner, max_calls=1, pricing=False)
    with pytest.raises(ServerError):
        await acct.complete(req())
    assert (await acct.complete(req()))[0].text == "ok"
    assert acct.usage.calls == 1


async def test_token_and_cost_caps_reserve_the_worst_case() -> None:
    inner = Failing()  # 10 prompt + 5 completion tokens a call
    worst = prompt_token_bound(req("1", max_tokens=5)) + 5
    # room for the worst case after two answered calls (30 tokens), not after three
    acct = AccountingBackend(inner, max_tokens=30 + worst, pricing=False, prices={"failing-model": (0.001, 0.002)})
    acct.model = "failing-model"
    await acct.complete(req("1", max_tokens=5))
    await acct.complete(req("2", max_tokens=5))
    await acct.complete(req("3", max_tokens=5))
    assert acct.usage.cost_usd == pytest.approx(3 * (10 * 0.001 + 5 * 0.002))
    with pytest.raises(BudgetExceeded, match=f"max_tokens={30 + worst}"):
        await acct.complete(req("4", max_tokens=5))
    assert inner.sent == ["1", "2", "3"]

    # $0.001 a prompt token (completions free): a call may cost (worst - 5) * 0.001; two calls cost 0.02
    acct = AccountingBackend(Failing(), max_cost_usd=0.02 + (worst - 5) * 0.001 - 1e-9, prices={"m": (0.001, 0.0)})
    acct.model = "m"
    await acct.complete(req("1", max_tokens=5))
    await acct.complete(req("2", max_tokens=5))
    with pytest.raises(BudgetExceeded, match="max_cost"):
        await acct.complete(req("3", max_tokens=5))
    assert acct.usage.cost_usd == pytest.approx(0.02) and acct.usage.unpriced_calls == 0


async def test_unpriced_model_counts_zero_with_a_note() -> None:
    acct = AccountingBackend(ScriptedBackend(["a"], model="my-private-model"), pricing=False)
    await acct.complete(req())
    await acct.complete(req("again"))
    assert acct.usage.cost_usd == 0 and acct.usage.unpriced_calls == 2
    assert any("my-private-model" in n for n in acct.notes)


# -- the order of the stack -----------------------------------------------------------------------

async def test_retried_call_is_stored_once_and_paid_once(tmp_path: Path) -> None:
    inner = Failing({"q": [ServerError("500"), RateLimited("429", retry_after=0.0)]})
    stack = stack_wrappers(inner, cache_dir=tmp_path, pricing=False)
    stack.find(RetryBackend)._sleep = FakeSleep()
    assert (await stack.complete(req("q")))[0].text == "ok q"
    hit = (await stack.complete(req("q")))[0]
    assert hit.cached and inner.sent == ["q"] * 3
    acct = stack.find(AccountingBackend)
    assert acct.usage == Usage(prompt_tokens=10, completion_tokens=5, calls=1, cached_calls=1, unpriced_calls=1)
    assert stack.find(RetryBackend).retries == 2
    assert len(stack.find(CacheBackend)._disk) == 1


async def _a_then_b(stack_of) -> list[str]:
    """A is rate-limited once (Retry-After 0.2 s); B arrives while A sleeps. Returns the send order."""
    inner = Failing({"A": [RateLimited("429", retry_after=0.2)]})
    stack = stack_of(inner)
    a = asyncio.create_task(stack.complete(req("A")))
    await asyncio.sleep(0.05)
    await stack.complete(req("B"))
    await a
    return inner.sent


async def test_backoff_holds_no_slot_in_the_builder_order() -> None:
    assert await _a_then_b(lambda b: stack_wrappers(b, concurrency=1, pricing=False)) == ["A", "B", "A"]
    # The other order (throttle outside retry): A's backoff keeps the only slot and B waits.
    other = await _a_then_b(lambda b: ThrottleBackend(RetryBackend(AccountingBackend(b, pricing=False)), 1))
    assert other == ["A", "A", "B"]


async def test_cache_hit_is_served_past_a_cap(tmp_path: Path) -> None:
    inner = Failing()
    stack = stack_wrappers(inner, cache_dir=tmp_path, max_calls=1, pricing=False)
    await stack.complete(req("paid"))
    with pytest.raises(BudgetExceeded):
        await stack.complete(req("new"))
    hit = (await stack.complete(req("paid")))[0]
    assert hit.cached and inner.sent == ["paid"]
    assert stack.find(AccountingBackend).usage.cached_calls == 1


async def test_caps_are_checked_when_the_call_is_sent_not_when_it_queues() -> None:
    # One slot; after the first answer (15 tokens) no worst case fits; the queued calls must not go.
    cap = prompt_token_bound(req("0", max_tokens=5)) + 5 + 14
    inner = Failing(latency=0.02)
    stack = stack_wrappers(inner, concurrency=1, max_tokens_total=cap, pricing=False)
    outs = await asyncio.gather(*(stack.complete(req(str(i), max_tokens=5)) for i in range(4)),
                                return_exceptions=True)
    assert inner.sent == ["0"]
    assert sum(isinstance(o, BudgetExceeded) for o in outs) == 3

    # The other order (budget outside the throttle) holds too: the queued calls' reservations wait.
    inner = Failing(latency=0.02)
    other = AccountingBackend(ThrottleBackend(inner, concurrency=1), max_tokens=cap, pricing=False)
    await asyncio.gather(*(other.complete(req(str(i), max_tokens=5)) for i in range(4)), return_exceptions=True)
    assert inner.sent == ["0"]


async def test_a_judge_backend_shares_the_run_budget():
    solver = stack_wrappers(ScriptedBackend(["a"]), max_calls=3, pricing=False)
    judge = stack_wrappers(ScriptedBackend(["b"]), max_calls=3, pricing=False, share_budget_with=solver)
    ctx = RunContext(backends={"default": solver, "judge": judge})
    await ctx.complete([{"role": "user", "content": "q"}], role="draft")
    await ctx.complete([{"role": "user", "content": "q"}], role="judge", use="judge", sample_index=1)
    await ctx.complete([{"role": "user", "content": "q"}], role="judge", use="judge", sample_index=2)
    with pytest.raises(BudgetExceeded, match="max_calls=3"):
        await ctx.complete([{"role": "user", "content": "q"}], role="draft", sample_index=3)
    assert solver.find(AccountingBackend).usage.calls == 3  # the run's total
    assert judge.find(AccountingBackend).usage.calls == 2  # the judge's own share

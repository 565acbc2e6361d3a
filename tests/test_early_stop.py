"""Early stopping of votes (tts.selectors.early_stop): the rules, self-consistency on the loopback server
(answers and calls checked against the server's own counters), and RTV's exact call counts."""

from __future__ import annotations

import math
import re

import pytest

from tts.backends.openai_http import OpenAIHTTPBackend
from tts.build import stack_wrappers
from tts.context import SamplingDefaults
from tts.errors import ConfigError
from tts.records import Task
from tts.run import run_many
from tts.selectors import RTV
from tts.selectors.early_stop import cannot_lose, decide, vote_in_waves, win_probability
from tts.spec import strategy_from_spec
from tts.strategies import SelfConsistency, TournamentVoting
from tts.testing import LoopbackServer, ScriptedBackend, request_text

SUMS = [Task(id=f"t{i}", prompt=f"What is {11 + i} + {23 + 2 * i}?", answer=str(34 + 3 * i)) for i in range(30)]


async def fixed_votes(votes, early_stop, wave=None):
    sent: list[int] = []

    async def draw(start, count):
        sent.extend(range(start, start + count))
        return votes[start:start + count]

    items, rec = await vote_in_waves(draw, len(votes), lambda v: (v, 1.0), early_stop=early_stop, wave=wave)
    assert sent == list(range(rec.drawn)) and len(items) == rec.drawn == sum(rec.waves)
    return rec


# -- the rules ------------------------------------------------------------------------------------

async def test_lossless_unanimous_stops_at_the_smallest_certain_majority():
    for v in (1, 2, 3, 7, 8, 16):
        rec = await fixed_votes(["a"] * v, 1.0)
        assert rec.drawn == math.ceil((v + 1) / 2), v
        assert rec.waves == [math.ceil((v + 1) / 2)]  # one wave: the fewest that could decide


async def test_lossless_never_stops_on_a_lead_the_rest_could_tie():
    assert not cannot_lose({"a": 5, "b": 2}, 3)  # 5 vs 2+3: a tie is possible
    assert cannot_lose({"a": 5, "b": 2}, 2)
    assert not cannot_lose({"a": 3, "b": 3}, 0)  # a tie is no winner
    assert cannot_lose({"a": 1.8, "b": 0.1}, 2, max_weight=0.8)
    assert not cannot_lose({"a": 1.8, "b": 0.1}, 2, max_weight=0.9)
    # a split vote goes to the end
    rec = await fixed_votes(["a", "b"] * 4, 1.0)
    assert rec.drawn == 8 and not rec.stopped_early


async def test_no_early_stop_is_one_wave_of_everything():
    rec = await fixed_votes(["a"] * 8, None)
    assert rec.waves == [8] and not rec.stopped_early


async def test_fixed_waves_are_awaited_whole():
    rec = await fixed_votes(["a"] * 16, 1.0, wave=4)
    assert rec.waves == [4, 4, 4] and rec.drawn == 12  # decided after 9, but the third wave was sent


def test_posterior_is_between_lossless_and_a_coin():
    assert win_probability({"a": 3.0}, {"a": 3}, 0) == 1.0
    assert win_probability({"a": 2.0, "b": 2.0}, {"a": 2, "b": 2}, 4) == 0.0  # no leader
    p_small = win_probability({"a": 2.0, "b": 1.0}, {"a": 2, "b": 1}, 13)
    p_big = win_probability({"a": 8.0, "b": 1.0}, {"a": 8, "b": 1}, 7)
    assert 0.0 < p_small < 0.8 < p_big < 1.0
    # more votes for the leader can only help
    ps = [win_probability({"a": float(k), "b": 1.0}, {"a": k, "b": 1}, 16 - k - 1) for k in range(2, 10)]
    assert ps == sorted(ps)
    # lossless-safe => the posterior rule stops too
    assert decide([("a", 1.0)] * 5, 3, 0.99) == (True, 1.0)


def test_early_stop_must_be_in_range():
    with pytest.raises(ConfigError, match="early_stop"):
        strategy_from_spec({"kind": "self-consistency", "early_stop": 1.5})
    with pytest.raises(ConfigError, match="early_stop"):
        strategy_from_spec({"kind": "rtv", "early_stop": 0.3})


# -- self-consistency on the loopback server ---------------------------------------------------------

async def run_sc(server, strategy, seed=7):
    backend = stack_wrappers(OpenAIHTTPBackend("loop", server.url), retries=0)
    server.reset()
    try:
        results = await run_many(strategy, SUMS, backend, defaults=SamplingDefaults(seed=seed))
    finally:
        await backend.aclose()
    return results, dict(server.stats)


@pytest.mark.parametrize("p_correct", [0.25, 0.6])
async def test_lossless_early_stop_gives_the_full_budget_answer_on_every_task_with_fewer_calls(p_correct):
    async with LoopbackServer(p_correct=p_correct) as server:
        full, full_stats = await run_sc(server, SelfConsistency(n=16))
        lossless, stats = await run_sc(server, SelfConsistency(n=16, early_stop=1.0))
    assert [r.answer for r in lossless] == [r.answer for r in full]
    if p_correct < 0.5:  # not trivially unanimous: the full budget gets some wrong
        assert any(r.answer != t.answer for r, t in zip(full, SUMS, strict=True))
    calls = sum(r.usage.calls for r in lossless)
    assert full_stats["ok"] == 16 * len(SUMS) == sum(r.usage.calls for r in full)
    assert calls == stats["ok"] == stats["requests"] < full_stats["ok"]
    if p_correct > 0.5:
        assert calls < 0.8 * full_stats["ok"]
    # each task drew exactly the first `drawn` samples, in its waves
    for r in lossless:
        es = r.metadata["early_stop"]
        assert sorted(c.sample_index for c in r.trace) == list(range(es["drawn"])) == list(range(sum(es["waves"])))


@pytest.mark.parametrize("p_correct", [0.6, 0.8])
async def test_posterior_early_stop_saves_most_calls_at_the_same_accuracy(p_correct):
    async with LoopbackServer(p_correct=p_correct) as server:
        full, full_stats = await run_sc(server, SelfConsistency(n=16))
        early, stats = await run_sc(server, SelfConsistency(n=16, early_stop=0.95))
    acc_full = sum(bool(r.correct) for r in full) / len(SUMS)
    acc_early = sum(bool(r.correct) for r in early) / len(SUMS)
    assert acc_early >= acc_full - 0.04, (acc_early, acc_full)
    # every call the server answered is counted, and no more
    assert sum(r.usage.calls for r in early) == stats["ok"] == stats["requests"]
    assert sum(r.usage.completion_tokens for r in early) > 0
    # about half the calls at 0.6 (benchmarks/adaptive.py measures it on 100+ tasks), a third at 0.8
    assert stats["ok"] <= (0.6 if p_correct < 0.7 else 0.4) * full_stats["ok"], (stats["ok"], full_stats["ok"])


async def test_nothing_is_sent_after_the_decision_and_inflight_calls_are_paid_and_counted():
    async with LoopbackServer(latency=0.01) as server:  # always right: the vote is unanimous
        results, stats = await run_sc(server, SelfConsistency(n=16, early_stop=1.0, wave=4))
        import asyncio

        await asyncio.sleep(0.1)  # anything sent late would show up now
        assert server.stats["requests"] == stats["requests"]
    for r in results:
        # decided after 9 votes, but the third wave of 4 was already out: all 12 paid and counted
        assert r.metadata["early_stop"]["waves"] == [4, 4, 4]
        assert r.usage.calls == 12 and len(r.candidates) == 12
    assert stats["ok"] == stats["requests"] == 12 * len(SUMS)


# -- RTV ---------------------------------------------------------------------------------------------

def biggest_answer_judge(request):
    """A unanimous judge: always names the candidate with the largest answer."""
    text = request_text(request)
    if "WINNER" not in text:
        return f"ANSWER: {request.sample_index}"
    blocks = re.split(r"## Candidate \d+", text)[1:]
    values = [int(re.findall(r"(?:ANSWER|Final answer): (\d+)", b)[0]) for b in blocks]  # full or short form
    return f"WINNER: {values.index(max(values)) + 1}"


@pytest.mark.parametrize("votes", [1, 2, 7, 8])
async def test_rtv_early_stop_exact_calls_with_unanimous_judges(votes):
    task = Task(id="t", prompt="Name a number.")
    results = {}
    for early in (None, 1.0):
        be = ScriptedBackend(biggest_answer_judge)
        res = await TournamentVoting(n=16, votes=votes, early_stop=early).run(task, be)
        judge = [r for r in be.requests if "WINNER" in request_text(r)]
        per_contest = votes if early is None else math.ceil((votes + 1) / 2)
        assert len(judge) == 15 * per_contest == res.metadata["tournament"]["judge_calls"]
        assert all(len(g["votes"]) == per_contest for rnd in res.metadata["tournament"]["groups"] for g in rnd)
        results[early] = res.answer
    assert results[None] == results[1.0] == "15"


async def test_rtv_posterior_early_stop_takes_fewer_votes_than_lossless():
    from tts.context import RunContext
    from tts.records import Candidate

    cands = [Candidate(id=f"c{i}", text=f"ANSWER: {i}", answer=str(i)) for i in range(8)]
    calls = {}
    for early in (1.0, 0.9):
        be = ScriptedBackend(biggest_answer_judge)
        t = await RTV(votes=16, early_stop=early).tournament(Task(id="t", prompt="?"), cands, RunContext(be))
        calls[early] = be.calls
        assert t.winners[0].id == "c7"
    assert calls[0.9] < calls[1.0] == 7 * 9


# -- confidence gating (DeepConf-style) --------------------------------------------------------------

def certain(p_top: float):
    """Per-token logprobs whose top entry has probability p_top (the rest spread over 4 others)."""
    from tts.records import TokenLogprob

    rest = (1 - p_top) / 4
    tops = [{"token": "x", "logprob": math.log(p_top)}] + [{"token": "y", "logprob": math.log(rest)}] * 4
    return [TokenLogprob(token="x", logprob=math.log(p_top), top_logprobs=tops)] * 3


def confident_minority(request):
    """Samples 0, 3, 6, ... are sure of 42; the others, a more common wrong 41, are guessing."""
    from tts.records import Completion, Usage

    sure = request.sample_index % 3 == 0
    return Completion(text=f"ANSWER: {42 if sure else 41}", logprobs=certain(0.97 if sure else 0.4),
                      usage=Usage(prompt_tokens=5, completion_tokens=3, calls=1))


async def test_confidence_keep_votes_with_the_most_self_certain_samples():
    task = Task(id="t", prompt="What is 20 + 22?", answer="42")
    plain = await SelfConsistency(n=9).run(task, ScriptedBackend(confident_minority))
    assert plain.answer == "41"
    kept = await SelfConsistency(n=9, confidence_keep=0.3).run(task, ScriptedBackend(confident_minority))
    assert kept.answer == "42" and kept.metadata["votes"] == {"42": 3.0}
    # online: the cut of the first wave skips the unsure samples as they arrive, and the vote stops early
    be = ScriptedBackend(confident_minority)
    online = await SelfConsistency(n=18, confidence_keep=0.34, early_stop=0.9, wave=6).run(task, be)
    assert online.answer == "42" and be.calls < 18
    assert online.metadata["early_stop"]["stopped_early"]


async def test_confidence_keep_without_logprobs_says_so():
    with pytest.raises(ConfigError, match="logprobs"):
        await SelfConsistency(n=4, confidence_keep=0.5).run(Task(id="t", prompt="?"), ScriptedBackend(["ANSWER: 1"]))


# -- the CLI -----------------------------------------------------------------------------------------

def test_cli_flags_build_early_stopping_specs():
    from tts.cli.main import build_parser
    from tts.cli.strategy_flags import build_strategy

    def spec(*argv):
        return build_strategy(build_parser().parse_args(["run", "t.jsonl", "--model", "m", *argv]))

    sc = spec("--strategy", "self-consistency", "--n", "16", "--early-stop", "0.95", "--wave", "4")
    assert (sc.selector.early_stop, sc.selector.wave) == (0.95, 4)  # the vote holds them (generate-select)
    rtv = spec("--strategy", "rtv", "--early-stop", "1.0")
    assert rtv.selector.early_stop == 1.0
    bon = spec("--strategy", "best-of-n", "--votes", "8", "--early-stop", "1.0")
    assert bon.selector.kind == "rtv" and (bon.selector.votes, bon.selector.early_stop) == (8, 1.0)
    pdr = spec("--strategy", "pdr", "--distill", "top-k", "--votes", "4", "--early-stop", "0.9")
    assert pdr.selector.early_stop == 0.9
    with pytest.raises(ConfigError, match="--early-stop applies here only to RTV votes"):
        spec("--strategy", "best-of-n", "--early-stop", "1.0")  # one judge call: no votes to stop
    with pytest.raises(ConfigError, match="--early-stop does not apply to --strategy single"):
        spec("--early-stop", "1.0")
    with pytest.raises(ConfigError, match="early_stop"):
        spec("--strategy", "self-consistency", "--early-stop", "2")

"""DeepConf online (tts.selectors.confidence_gate) through self-consistency, on a scripted backend that
returns logprobs: the warm-up's cut drops unsure samples from the vote, the vote stops at
consensus, no sample is sent after the decision, and no logprobs is a clear error."""

import math

import pytest

from tts.errors import ConfigError
from tts.records import Completion, Task, TokenLogprob, Usage
from tts.selectors.confidence import certainty_cut, self_certainty
from tts.strategies import SelfConsistency
from tts.testing import ScriptedBackend

TASK = Task(id="t", prompt="What is 20 + 22?", answer="42")


def logprobs(p_top: float) -> list[TokenLogprob]:
    """Three tokens whose top entry has probability p_top (the rest spread over 4 others)."""
    rest = (1 - p_top) / 4
    tops = [{"token": "x", "logprob": math.log(p_top)}] + [{"token": "y", "logprob": math.log(rest)}] * 4
    return [TokenLogprob(token="x", logprob=math.log(p_top), top_logprobs=tops)] * 3


def reply(answer: str, p_top: float) -> Completion:
    return Completion(text=f"ANSWER: {answer}", logprobs=logprobs(p_top),
                      usage=Usage(prompt_tokens=5, completion_tokens=3, calls=1))


def sure_minority(request):
    """Every third sample is sure of 42; the others, a more common wrong 41, are guessing."""
    sure = request.sample_index % 3 == 0
    return reply("42" if sure else "41", 0.97 if sure else 0.4)


def split_and_sure(request):
    """Equally sure samples that alternate between two answers: no consensus is ever reached."""
    return reply(str(41 + request.sample_index % 2), 0.9)


async def test_the_warm_up_cut_drops_unsure_samples_and_consensus_stops_the_vote():
    plain = await SelfConsistency(n=16).run(TASK, ScriptedBackend(sure_minority))
    assert plain.answer == "41"
    be = ScriptedBackend(sure_minority)
    res = await SelfConsistency(n=16, wave=4, confidence_keep=0.5, consensus=0.95).run(TASK, be)
    gate = res.metadata["confidence_gate"]
    # warm-up 0..3: samples 0 and 3 are sure (of 42), 1 and 2 fall under the cut; 42 holds all kept votes
    assert res.answer == "42" and res.metadata["votes"] == {"42": 2.0}
    assert gate["waves"] == [4] and gate["dropped"] == 2 and gate["stopped_early"] and gate["share"] == 1.0
    assert be.calls == gate["drawn"] == 4 and res.usage.calls == 4  # nothing sent after the decision
    assert gate["cut"] == pytest.approx(self_certainty(logprobs(0.97)))


async def test_without_consensus_the_whole_budget_is_drawn_in_waves():
    be = ScriptedBackend(split_and_sure)
    res = await SelfConsistency(n=10, wave=4, consensus=0.95).run(TASK, be)
    gate = res.metadata["confidence_gate"]
    assert gate["waves"] == [4, 4, 2] and be.calls == 10 and not gate["stopped_early"]
    assert gate["dropped"] == 0 and gate["share"] == 0.5  # equally sure: the cut keeps them all
    assert sorted(r.sample_index for r in be.requests) == list(range(10))


async def test_a_later_wave_below_the_warm_up_cut_does_not_vote():
    def sure_first(request):  # the warm-up is sure and split; later samples guess 41
        if request.sample_index < 2:
            return reply(str(42 + request.sample_index), 0.97)
        return reply("41", 0.4)

    res = await SelfConsistency(n=8, wave=2, consensus=0.95).run(TASK, ScriptedBackend(sure_first))
    gate = res.metadata["confidence_gate"]
    assert gate["drawn"] == 8 and gate["dropped"] == 6 and "41" not in res.metadata["votes"]


async def test_consensus_needs_logprobs_and_excludes_early_stop():
    with pytest.raises(ConfigError, match="logprobs"):
        await SelfConsistency(n=4, consensus=0.9).run(TASK, ScriptedBackend(["ANSWER: 1"]))
    with pytest.raises(ConfigError, match="not both"):
        await SelfConsistency(n=4, consensus=0.9, early_stop=1.0).run(TASK, ScriptedBackend(sure_minority))


def test_certainty_cut_keeps_the_most_certain_fraction():
    assert certainty_cut([0.1, 0.9, 0.5, 0.7], 0.5) == 0.7
    assert certainty_cut([0.1, 0.9], 0.01) == 0.9 and certainty_cut([0.1, 0.9], 1.0) == 0.1


def test_tts_run_asks_for_logprobs_when_consensus_is_set():
    import argparse

    from tts.cli.run import sampling_defaults

    args = argparse.Namespace(temperature=0.7, max_tokens=64, seed=0, n_per_request=1)
    assert sampling_defaults(args, [SelfConsistency(n=8, consensus=0.95)]).extra == {"logprobs": True,
                                                                                     "top_logprobs": 5}
    assert sampling_defaults(args, [SelfConsistency(n=8)]).extra == {}

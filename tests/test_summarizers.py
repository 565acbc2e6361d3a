"""Summarizers: the no-model one, the LLM one (repair, retry, fallback, bounds) and the renderer."""

import json

import pytest

from tts.context import RunContext
from tts.errors import ParseError
from tts.records import Candidate, Evidence, Task, TrajectorySummary
from tts.selectors import RTV
from tts.summarizers import LLMSummarizer, ShortSummarizer, parse_summary_json, render_summary, short_summary
from tts.summarizers.render import approx_tokens
from tts.testing import ScriptedBackend, request_text

TASK = Task(id="t", prompt="What is 17 + 25?", answer="42")
TEXT = "First add the tens: 10 + 20 = 30.\nThen the units: 7 + 5 = 12.\nSo 30 + 12 = 42.\nAnswer: 42"
CAND = Candidate(id="c0", text=TEXT, answer="42")

GOOD = {
    "hypotheses": [], "approach": "added tens and units separately", "decisions": ["split into tens and units"],
    "actions": ["added"], "files_changed": [],
    "evidence": [{"kind": "output", "quote": "So 30 + 12 = 42."}], "progress": "done",
    "failure_modes": [], "open_questions": [], "final_answer": "42", "status_claim": "solved",
}


async def test_short_summary_fields_and_bound():
    s = await ShortSummarizer().summarize(TASK, CAND, RunContext(ScriptedBackend(["unused"])))
    assert s.source_id == "c0" and s.final_answer == "42"
    assert [e.quote for e in s.evidence] == ["So 30 + 12 = 42.", "Answer: 42"]
    assert s.approach.startswith("First add the tens") and "Answer: 42" not in s.approach
    assert s.length_tokens == approx_tokens(render_summary(s, 300))
    long = Candidate(id="L", text="\n".join(f"step {i}: " + "blah " * 30 for i in range(400)) + "\nAnswer: 7")
    ls = short_summary(long, max_tokens=100)
    assert ls.final_answer == "7" and len(render_summary(ls, 100)) <= 400 and ls.length_tokens <= 100
    assert short_summary(Candidate(id="e", text="")).final_answer is None


def test_render_is_bounded_and_leads_with_the_answer():
    s = TrajectorySummary(source_id="x", final_answer="42", approach="a " * 5000,
                          evidence=[Evidence(kind="command", quote="pytest -q", exit_code=1)])
    text = render_summary(s, max_tokens=50)
    assert text.startswith("Final answer: 42") and len(text) <= 200 and "[...]" in text
    full = render_summary(s.model_copy(update={"approach": "short"}), 400)
    assert "- [command exit=1] pytest -q" in full


@pytest.mark.parametrize("reply", [
    "```json\n" + json.dumps(GOOD) + "\n```",
    "Here is the summary:\n" + json.dumps(GOOD) + "\nHope this helps.",
    json.dumps({**GOOD, "extra_key": 1, "final_answer": 42}),
])
def test_parse_summary_json_repairs(reply):
    s = parse_summary_json(reply, "c9")
    assert s.source_id == "c9" and s.final_answer == "42" and s.evidence[0].quote == "So 30 + 12 = 42."


def test_parse_summary_json_wraps_string_evidence_and_names_errors():
    s = parse_summary_json(json.dumps({**GOOD, "evidence": ["So 30 + 12 = 42."]}), "c")
    assert s.evidence == [Evidence(kind="other", quote="So 30 + 12 = 42.")]
    with pytest.raises(ParseError, match="no JSON object"):
        parse_summary_json("sorry, I can't", "c")
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_summary_json('{"approach": "x",}', "c")
    with pytest.raises(ParseError, match="field 'decisions'"):
        parse_summary_json(json.dumps({**GOOD, "decisions": 5}), "c")


async def test_llm_summarizer_one_call_on_fenced_json():
    be = ScriptedBackend(["```json\n" + json.dumps(GOOD) + "\n```"])
    ctx = RunContext(be)
    s = await LLMSummarizer().summarize(TASK, CAND, ctx)
    assert be.calls == 1 and s.approach == "added tens and units separately" and s.model == "scripted"
    assert s.usage.calls == 1 and s.usage.prompt_tokens > 0
    assert [r.role for r in ctx.records] == ["summarize"]
    prompt = request_text(be.requests[0])
    assert "VERBATIM" in prompt and TEXT in prompt and be.requests[0].temperature == 0.0


async def test_llm_summarizer_retries_once_with_the_error():
    be = ScriptedBackend(['{"approach": "x",', json.dumps(GOOD)])
    s = await LLMSummarizer().summarize(TASK, CAND, RunContext(be))
    assert be.calls == 2 and s.final_answer == "42" and s.status_claim == "solved"
    retry = be.requests[1]
    assert [m.role for m in retry.messages] == ["user", "assistant", "user"]
    assert retry.messages[1].content == '{"approach": "x",'
    assert "invalid JSON" in retry.messages[2].content
    assert retry.sample_index == 1 and s.usage.calls == 2


async def test_llm_summarizer_falls_back_on_garbage():
    be = ScriptedBackend(["no idea", "still no idea"])
    s = await LLMSummarizer().summarize(TASK, CAND, RunContext(be))
    assert be.calls == 2
    assert s == short_summary(CAND).model_copy(update={"usage": s.usage}) and s.usage.calls == 2
    be0 = ScriptedBackend(["nope"])
    await LLMSummarizer(retries=0).summarize(TASK, CAND, RunContext(be0))
    assert be0.calls == 1


async def test_llm_summarizer_drops_invented_evidence_and_caps_lengths():
    reply = {**GOOD, "evidence": [{"quote": "So 30 + 12 = 42."}, {"quote": "I verified with a calculator"},
                                  {"quote": "Then  the units:\n7 + 5 = 12."}],
             "decisions": [f"d{i} " + "x" * 500 for i in range(20)], "final_answer": None}
    s = await LLMSummarizer(max_items=3, max_item_chars=100).summarize(
        TASK, CAND, RunContext(ScriptedBackend([json.dumps(reply)])))
    assert [e.quote for e in s.evidence] == ["So 30 + 12 = 42.", "Then  the units:\n7 + 5 = 12."]
    assert len(s.decisions) == 3 and all(len(d) <= 100 for d in s.decisions)
    assert s.final_answer == "42"  # filled from the candidate when the model left it out
    kept = await LLMSummarizer(verify_quotes=False).summarize(
        TASK, CAND, RunContext(ScriptedBackend([json.dumps(reply)])))
    assert len(kept.evidence) == 3


async def test_llm_summarizer_clips_long_input_and_uses_its_backend():
    long = Candidate(id="L", text="HEAD " + "filler " * 20000 + " TAIL")
    default, summ = ScriptedBackend(["never"]), ScriptedBackend([json.dumps(GOOD)])
    await LLMSummarizer(max_input_tokens=500).summarize(TASK, long, RunContext(backends={"default": default,
                                                                                         "summarizer": summ}))
    assert default.calls == 0 and summ.calls == 1
    sent = request_text(summ.requests[0])
    assert "HEAD" in sent and "TAIL" in sent and "[...]" in sent and len(sent) < 500 * 4 + 3000


async def test_rtv_with_llm_summaries_counts_summary_and_judge_calls():
    def reply(req):
        text = request_text(req)
        return "WINNER: 1" if "WINNER" in text else json.dumps(GOOD)

    be = ScriptedBackend(reply)
    cands = [Candidate(id=f"c{i}", text=TEXT, answer="42") for i in range(4)]
    ctx = RunContext(be)
    out = await RTV(votes=2, summarizer=LLMSummarizer()).select(TASK, cands, ctx)
    roles = [r.role for r in ctx.records]
    assert roles.count("summarize") == 4 and roles.count("judge") == 2 * 3
    assert out[0].summary.approach == "added tens and units separately"
    assert "Approach: added tens and units separately" in request_text(
        next(r for r in be.requests if "WINNER" in request_text(r)))

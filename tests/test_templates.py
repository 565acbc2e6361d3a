"""What refinement and judge templates show a model: the task's own answer instruction in charge
(no second answer format), the short-answer workspace within kappa, byte-identical shared
prefixes, and call counts that do not depend on what is shown."""

import re

import pytest

from tts.records import Candidate, Task
from tts.run import run_task
from tts.selectors.judge import ListwiseJudge
from tts.selectors.tournament import RTV
from tts.selectors.verifier import Verifier
from tts.strategies import ParallelDistillRefine, SequentialRefinement, TournamentVoting
from tts.strategies.workspace import answer_support, approx_tokens
from tts.summarizers.short import rationale, short_form, use_short_form
from tts.testing import ScriptedBackend, request_text

OWN = "Answer with just the number."
TASK = Task(id="t", prompt=f"What is 7 + 7? {OWN}", answer="14")
DRAFTS = ["7 + 7 = 14", "14", "The answer is 13.", "Seven plus seven is 14.\nAnswer: 14"]
# Any instruction that imposes an answer format of the template's own.
SECOND_FORMAT = re.compile(r"(?i)(of the form:?\s*answer\s*:|answer\s*:\s*<|<your final answer>|\\boxed|"
                           r"final answer (in|as|on)\b)")


def fake(req):
    text = request_text(req)
    if "WINNER: <number" in text:
        return "WINNER: 2"
    if "compact summary" in text:
        return "Most attempts say 14 (3 of 4); one says 13."
    if "Review this attempt" in text:
        return "The arithmetic is right."
    return DRAFTS[req.sample_index % len(DRAFTS)]


STRATEGIES = {
    "pdr top-2": ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2, kappa=128),
    "pdr summary": ParallelDistillRefine(drafts=[4, 1], distill="summary", kappa=128),
    "pdr random-2": ParallelDistillRefine(drafts=[4, 2, 1], distill="random-k", k=2, kappa=128),
    "sr": SequentialRefinement(rounds=3),
    "sr critique+verifier": SequentialRefinement(rounds=3, critique=True, scorer=Verifier()),
    "rtv": TournamentVoting(n=4, votes=2),
}


def common_prefix(texts: list[str]) -> str:
    """The longest string every one of `texts` starts with (character by character)."""
    first, last = min(texts), max(texts)
    n = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:n]


def seen(request) -> str:
    """What a request shows: its messages joined, after an earlier turn of the plain task (the default
    `short_as="turn"` puts the task, then the workspace as the model's own reply, before the request)."""
    msgs = request.messages
    if len(msgs) > 2 and msgs[1].role == "assistant":
        assert (msgs[0].role, msgs[0].content) == ("user", TASK.prompt)  # the earlier turn is the task verbatim
        msgs = msgs[1:]
    return "\n".join(m.content for m in msgs)


def later_prompts(be):
    """Every prompt that is not the plain task (round 2 and on, distills, judges, critiques)."""
    return [seen(r) for r in be.requests if request_text(r) != TASK.prompt]


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_the_tasks_own_answer_instruction_is_the_only_one(name):
    be = ScriptedBackend(fake)
    res = await run_task(STRATEGIES[name], TASK, be)
    later = later_prompts(be)
    assert later, "the strategy showed the model nothing but the task"
    for text in later:
        assert text.count(OWN) == 1, text
        assert not SECOND_FORMAT.search(text), text
    for text in later:
        if "WINNER" not in text and "compact summary" not in text and "Review this attempt" not in text:
            assert text.rstrip().endswith(TASK.prompt), text  # the task restated last
    assert res.answer is not None


@pytest.mark.parametrize("fmt,line", [("answer-line", "Answer: <your final answer>"), ("boxed", "\\boxed{}")])
async def test_an_explicit_answer_format_adds_exactly_one_instruction(fmt, line):
    for strat in (ParallelDistillRefine(drafts=[2, 1], distill="top-k", answer_format=fmt),
                  SequentialRefinement(rounds=2, answer_format=fmt)):
        be = ScriptedBackend(lambda req: "7 + 7 = 14\nAnswer: 14")
        await run_task(strat, TASK, be)
        (last,) = later_prompts(be)
        assert last.count(line) == 1 and line in last.rstrip().splitlines()[-1]
        assert last.count(OWN) == 1


async def test_short_workspace_lists_answers_with_support_and_one_rationale():
    be = ScriptedBackend(fake)
    await run_task(STRATEGIES["pdr top-2"].model_copy(update={"short_as": "note"}), TASK, be)
    (final,) = later_prompts(be)
    assert "answered 14 (3 of 4 attempts); 13 (1 of 4 attempts)." in final
    # the shortest rationale behind the best-supported answer, and no attempt's full text
    assert final.count("Reasoning for 14: 7 + 7 = 14") == 1 and "Seven plus seven" not in final
    assert "13." not in final.split("Reasoning")[1]
    # as a turn (the default): the best-supported draft with the shortest rationale is the model's own
    # earlier reply, and the support follows in the user message, right before the task
    be = ScriptedBackend(fake)
    await run_task(STRATEGIES["pdr top-2"], TASK, be)
    _, said, again = be.requests[-1].messages
    assert said.role == "assistant" and said.content == "7 + 7 = 14\nAnswer: 14"
    assert again.content == ("Earlier attempts answered 14 (3 of 4 attempts); 13 (1 of 4 attempts). Keep this "
                             f"answer unless it is wrong.\n\n{TASK.prompt}")
    # split: the same turn, the support moved into a system note before it
    be = ScriptedBackend(fake)
    await run_task(STRATEGIES["pdr top-2"].model_copy(update={"short_as": "split"}), TASK, be)
    note, first, said, again = be.requests[-1].messages
    assert (note.role, first.content, said.content) == ("system", TASK.prompt, "7 + 7 = 14\nAnswer: 14")
    assert note.content == "Earlier attempts answered 14 (3 of 4 attempts); 13 (1 of 4 attempts)."
    assert again.content == f"Keep this answer unless it is wrong.\n\n{TASK.prompt}"


def workspace_of(messages, place: str) -> str:
    """The short workspace a draft read, by where `short_as` puts it; the task comes last, verbatim."""
    assert messages[-1].role == "user" and messages[-1].content.endswith(TASK.prompt)
    if place == "note":
        note, task = messages
        assert note.role == "system" and task.content == TASK.prompt
        return note.content.removeprefix("Notes on earlier attempts at this question (they may be wrong): ")
    if place == "split" and messages[0].role == "system":  # the turn below, the support as a note before it
        note, *messages = messages
        return f"{workspace_of(messages, 'turn')}\n{note.content}"
    if place == "split":  # summary: the summary is the earlier reply, as with turn
        place = "turn"
    if place == "turn":
        first, said, again = messages
        assert (first.content, said.role) == (TASK.prompt, "assistant")
        told = again.content[:-len(TASK.prompt)]
        for check in ("Check your answer above. ", "Keep this answer unless it is wrong."):
            told = told.replace(check, "")
        told = told.strip()
        return f"{said.content}\n{told}".strip()
    (msg,) = messages
    return msg.content[:-len(TASK.prompt)].strip().removeprefix("Notes on earlier attempts (they may be wrong): ")


@pytest.mark.parametrize("place", ["note", "message", "turn", "split"])
@pytest.mark.parametrize("distill", ["top-k", "random-k", "summary"])
async def test_short_workspace_stays_within_kappa(distill, place):
    # many distinct answers, each with a long rationale
    be = ScriptedBackend(lambda req: "because " * 60 + f"\nAnswer: {1000 + req.sample_index}")
    kappa = 30
    strat = ParallelDistillRefine(drafts=[8, 8, 1], distill=distill, k=8, kappa=kappa, show="short", short_as=place)
    res = await run_task(strat, TASK, be)
    drafts_on_workspace = [r for r in be.requests if len(r.messages) > 1 or (request_text(r) != TASK.prompt
                           and "compact summary" not in request_text(r))]
    assert len(drafts_on_workspace) == 9
    for r in drafts_on_workspace:
        assert 0 < approx_tokens(workspace_of(r.messages, place)) <= kappa
    assert max(res.metadata["workspace_tokens"]) <= kappa
    if distill == "summary":  # the summary's reply is bounded by kappa itself
        assert {r.max_tokens for r in be.requests if "compact summary" in request_text(r)} == {kappa}


@pytest.mark.parametrize("strat", [ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2),
                                   ParallelDistillRefine(drafts=[4, 1], distill="summary"),
                                   SequentialRefinement(rounds=2)])
async def test_where_the_short_workspace_goes(strat):
    roles = {"turn": ["user", "assistant", "user"], "note": ["system", "user"], "message": ["user"]}
    for place, expected in roles.items():
        be = ScriptedBackend(fake)
        await run_task(strat.model_copy(update={"short_as": place}), TASK, be)
        last = be.requests[-1].messages
        assert [m.role for m in last] == expected and last[-1].content.endswith(TASK.prompt)
    if isinstance(strat, ParallelDistillRefine):  # split: the turn, with top-k's support as a system note first
        be = ScriptedBackend(fake)
        await run_task(strat.model_copy(update={"short_as": "split"}), TASK, be)
        expected = roles["turn"] if strat.distill == "summary" else ["system", *roles["turn"]]
        assert [m.role for m in be.requests[-1].messages] == expected
    # the note's template is overridable by name
    be = ScriptedBackend(fake)
    override = {"pdr_draft_system.j2": "NOTE", "refine_system.j2": "NOTE"}
    await run_task(strat.model_copy(update={"short_as": "note", "prompts": override}), TASK, be)
    assert be.requests[-1].messages[0].content == "NOTE"


async def test_short_form_is_used_only_for_short_answers_in_short_replies():
    short = Candidate(id="a", text="7 + 7 = 14\nAnswer: 14", answer="14")
    long_reply = Candidate(id="b", text="step. " * 400 + "\nAnswer: 14", answer="14")
    long_answer = Candidate(id="c", text="Answer: " + "x" * 60, answer="x" * 60)
    assert use_short_form([short], "auto") and not use_short_form([short, long_reply], "auto")
    assert not use_short_form([long_answer], "auto") and use_short_form([long_reply], "short")
    assert not use_short_form([short], "full")
    assert short_form(short) == "7 + 7 = 14\nAnswer: 14"
    assert rationale("The answer is 14.\n14\nFinal answer: 14", "14") == ""
    assert approx_tokens(rationale("word " * 500, "1", 20)) <= 20
    assert answer_support([short, long_reply, long_answer]) == [{"answer": "14", "support": 2},
                                                                {"answer": "x" * 60, "support": 1}]


async def test_all_judge_prompts_of_a_contest_share_a_byte_identical_prefix():
    cands = [Candidate(id=f"c{i}", text=f"Attempt {i}: {7 + i} + 7 = {14 + i}", answer=str(14 + i))
             for i in range(4)]
    be = ScriptedBackend(["WINNER: 1"])
    from tts.context import RunContext

    ctx = RunContext(be, seed=3)
    await RTV(votes=5).select(TASK, cands, ctx)
    judge = [r for r in ctx.records if r.role == "judge"]
    assert len(judge) == 15
    by_contest: dict[str, list[str]] = {}
    for rec, req in zip(judge, [r for r in be.requests if "WINNER" in request_text(r)], strict=True):
        by_contest.setdefault(rec.path, []).append(request_text(req))
    assert len(by_contest) == 3
    heads = set()
    for prompts in by_contest.values():
        shared = common_prefix(prompts)
        assert TASK.prompt in shared and "# Candidates\n## Candidate " in shared  # all up to the candidates
        heads.add(shared[:shared.index("# Candidates")])
    assert len(heads) == 1  # and the same instructions + task in every contest of the tournament
    assert any(len(set(prompts)) > 1 for prompts in by_contest.values())  # orders shuffle after the prefix


async def test_parallel_drafts_of_one_round_read_the_same_prompt():
    be = ScriptedBackend(fake)
    await run_task(ParallelDistillRefine(drafts=[4, 3, 1], distill="top-k", k=2), TASK, be)
    round2 = [r for r in be.requests if request_text(r) != TASK.prompt][:3]
    assert len({request_text(r) for r in round2}) == 1 and [r.sample_index for r in round2] == [0, 1, 2]


async def test_judge_shows_a_short_answer_compactly_and_a_model_summary_whole():
    short = Candidate(id="a", text="Let me think. 7 + 7 = 14.\nAnswer: 14", answer="14")
    assert ListwiseJudge().shown(short) == "Final answer: 14\nReasoning: Let me think. 7 + 7 = 14."
    assert ListwiseJudge(show="summary").shown(short).startswith("Final answer: 14\nClaims:")
    long_reply = Candidate(id="b", text="step. " * 400 + "\nAnswer: 14", answer="14")
    assert "Claims:" in ListwiseJudge().shown(long_reply)
    assert approx_tokens(ListwiseJudge(rationale_tokens=10).shown(long_reply.model_copy(update={"text": "w " * 99}))) \
        <= 10 + 8


async def test_refine_shows_the_verifiers_verdict_and_asks_to_keep_a_right_answer():
    be = ScriptedBackend(lambda req: "7 + 7 = 13")
    await run_task(SequentialRefinement(rounds=2, scorer=Verifier()), TASK, be)
    refine = request_text(be.requests[1])
    assert "rejected the previous answer" in refine and "Keep this answer unless it is wrong" in refine
    assert refine.index("7 + 7 = 13") < refine.index("rejected") < refine.rindex(TASK.prompt)
    be = ScriptedBackend(lambda req: "step. " * 400 + "\nAnswer: 13")  # a long attempt: shown whole
    await run_task(SequentialRefinement(rounds=2, scorer=Verifier()), TASK, be)
    refine = request_text(be.requests[1])
    assert "Keep its answer unless you find an error" in refine and refine.rstrip().endswith(TASK.prompt)


@pytest.mark.parametrize("show", ["short", "full"])
@pytest.mark.parametrize("strat,calls", [
    (ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2), {"draft": 5}),
    (ParallelDistillRefine(drafts=[4, 1], distill="summary"), {"draft": 5, "distill": 1}),
    (ParallelDistillRefine(drafts=[4, 3, 1], distill="random-k", k=2), {"draft": 8}),
    (ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2, selector=RTV(votes=3)), {"draft": 5, "judge": 6}),
    (SequentialRefinement(rounds=3), {"draft": 1, "refine": 2}),
    (SequentialRefinement(rounds=2, critique=True), {"draft": 1, "refine": 1, "feedback": 1}),
])
async def test_call_counts_do_not_depend_on_what_is_shown(strat, calls, show):
    be = ScriptedBackend(fake)
    res = await run_task(strat.model_copy(update={"show": show}), TASK, be)
    got: dict[str, int] = {}
    for r in res.trace:
        got[r.role] = got.get(r.role, 0) + 1
    assert got == calls and be.calls == sum(calls.values())


@pytest.mark.parametrize("show", ["auto", "short", "summary", "text"])
async def test_rtv_call_count_does_not_depend_on_what_the_judge_sees(show):
    be = ScriptedBackend(fake)
    res = await run_task(TournamentVoting(n=4, votes=3, judge=ListwiseJudge(show=show)), TASK, be)
    assert be.calls == 4 + 3 * 3 and res.metadata["tournament"]["judge_calls"] == 9


async def test_the_short_workspace_template_is_overridable_by_name():
    be = ScriptedBackend(fake)
    strat = ParallelDistillRefine(drafts=[4, 1], distill="top-k", k=2,
                                  prompts={"pdr_answers": "TALLY {% for a in answers %}{{ a.answer }}={{ a.support }} "
                                                          "{% endfor %}of {{ total }}"})
    await run_task(strat, TASK, be)
    (final,) = later_prompts(be)
    assert "TALLY 14=3 13=1 of 4" in final


async def test_a_judge_over_short_answers_asks_for_the_verdict_alone_and_caps_its_reply():
    be = ScriptedBackend(fake)
    res = await run_task(TournamentVoting(n=4, votes=1), TASK, be)
    judge = [r for r in be.requests if "WINNER" in request_text(r)]
    assert len(judge) == 3 and res.metadata["tournament"]["judge_calls"] == 3  # call count unchanged
    for r in judge:
        text = request_text(r)
        assert r.max_tokens == 12 and text.rstrip().endswith("Reply with only this line:\nWINNER: <number from 1 to 2>")
        assert "Final answer: " in text and "End your reply" not in text
    # a long reply is shown whole (as its summary) and the judge may reason: the run's max_tokens, the long line
    be = ScriptedBackend(lambda req: "WINNER: 1" if "WINNER" in request_text(req) else "step. " * 400 + "\nAnswer: 14")
    await run_task(TournamentVoting(n=2, votes=1), TASK, be)
    (long_judge,) = [r for r in be.requests if "WINNER" in request_text(r)]
    assert long_judge.max_tokens != 12 and "End your reply with one line of the form:" in request_text(long_judge)
    # an explicit max_tokens wins over the cap
    be = ScriptedBackend(fake)
    await run_task(TournamentVoting(n=2, votes=1, judge=ListwiseJudge(max_tokens=40)), TASK, be)
    assert [r.max_tokens for r in be.requests if "WINNER" in request_text(r)] == [40]


async def test_run_many_compiles_the_templates_its_components_render_before_the_first_call(monkeypatch):
    from tts import prompts
    from tts.run import run_many

    compiled: list[tuple[str, int]] = []
    backend = ScriptedBackend(fake)
    env = prompts._env()
    get, from_string = env.get_template, env.from_string
    monkeypatch.setattr(env, "get_template", lambda name, *a, **k: compiled.append((name, backend.calls)) or get(name))
    monkeypatch.setattr(env, "from_string", lambda text, *a, **k: compiled.append((text, backend.calls))
                        or from_string(text))
    own = "{{ task }}\n{% for c in candidates %}{{ loop.index }}. {{ c }}\n{% endfor %}Reply WINNER: <number>."
    prompts._template.cache_clear()
    try:
        await run_many(TournamentVoting(n=4, votes=2), [TASK], backend)
        judged = TournamentVoting(n=4, votes=2, selector=RTV(judge=ListwiseJudge(prompts={"judge_listwise": own})))
        backend = ScriptedBackend(fake)
        await run_many(judged, [TASK], backend)
    finally:
        prompts._template.cache_clear()
    assert ("judge_listwise.j2", 0) in compiled  # before the first call went out
    assert [name for name, _ in compiled].count("judge_listwise.j2") == 1  # and only then
    assert (own, 0) in compiled  # an override is what is compiled for the component that has it

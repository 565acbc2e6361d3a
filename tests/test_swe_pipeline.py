"""Trajectory summaries, RTV over rollouts and agentic PDR, with scripted agents and a scripted judge."""

import asyncio
import json
import re
from pathlib import Path

import pytest

from tts.records import Step, Trajectory, TrajectorySummary
from tts.swe.grade import grade_local
from tts.swe.pipeline import AgenticPDR, run_instances, swe_rtv
from tts.swe.readers import read_mswea
from tts.swe.rundir import RunDir
from tts.swe.runners import MiniSweAgentRunner, ScriptedRunner, render_prior
from tts.swe.summarize import LLMTrajectorySummary, RuleTrajectorySummary, render_trajectory
from tts.swe.toy import FIX_COMMAND, FIX_PATCH, WRONG_PATCHES, make_toy_instance
from tts.testing import ScriptedBackend, request_text

FIX = Path(__file__).parent / "fixtures" / "swe"
GOOD = "+    return a + b"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_instance(tmp_path_factory.mktemp("toy"))


def judge_reply(request):
    """A judge that reads the patches and names the one that fixes `add` (else candidate 1)."""
    text = request_text(request)
    parts = re.split(r"^## Candidate (\d+)$", text, flags=re.M)
    for num, body in zip(parts[1::2], parts[2::2], strict=True):
        if GOOD in body:
            return f"Candidate {num} fixes add.\nWINNER: {num}"
    return "WINNER: 1"


def summary_reply(request):
    return json.dumps({"approach": "edited calc.py", "status_claim": "fixed",
                       "evidence": [{"kind": "command", "quote": "$ scripted", "exit_code": 0},
                                    {"kind": "test", "quote": "42 passed in 0.1s", "exit_code": 0}]})


def model(request):
    text = request_text(request)
    if "Summarize the coding-agent run" in text:
        return summary_reply(request)
    assert "candidate patches" in text, text[:200]
    return judge_reply(request)


# -- summaries ----------------------------------------------------------------------------------------
async def test_rule_summary_quotes_commands_exit_codes_tests_and_keeps_the_patch():
    t = read_mswea(FIX / "mswea_v11_toolcalls.traj.json")
    s = RuleTrajectorySummary().summarize_trajectory(t)
    assert s.source_id == "toy__calc-1" and s.final_patch == t.patch and s.files_changed == ["calc.py"]
    assert s.status_claim == "exit status Submitted; patch touches calc.py"
    tests = [e for e in s.evidence if e.kind == "test"]
    assert tests and "1 passed in 0.01s" in tests[-1].quote and tests[-1].exit_code == 0
    cmds = [(e.quote.splitlines()[0], e.exit_code) for e in s.evidence if e.kind == "command"]
    assert ("$ cat calc.py", 0) in cmds
    assert 0 < s.length_tokens <= 1200

    failed = RuleTrajectorySummary().summarize_trajectory(read_mswea(FIX / "mswea_v1_text.traj.json"))
    errors = [e for e in failed.evidence if e.kind == "error"]
    assert errors[0].quote == "E   ModuleNotFoundError: No module named 'calcc'" and errors[0].exit_code == 1
    assert failed.final_patch is None and failed.failure_modes == ["no patch produced"]
    assert failed.status_claim == "exit status LimitsExceeded; empty patch"


async def test_llm_summary_trims_observations_drops_invented_quotes_and_keeps_the_real_patch():
    long_out = "x" * 50_000
    steps = [Step(thought="look", action="cat big.log", observation=long_out, exit_code=0),
             Step(action="python -m pytest -q", observation="1 failed, 2 passed in 0.3s\n", exit_code=1)]
    steps += [Step(action=f"echo {i}", observation=f"{i}\n", exit_code=0) for i in range(200)]
    traj = Trajectory(id="t1", steps=steps, outcome="Submitted", patch=FIX_PATCH)
    backend = ScriptedBackend([json.dumps({
        "approach": "fixed add", "final_patch": "diff --git a/other.py (model's own idea)",
        "evidence": [{"kind": "test", "quote": "1 failed, 2 passed in 0.3s", "exit_code": 1},
                     {"kind": "test", "quote": "all 57 tests passed", "exit_code": 0}]})])
    from tts.context import RunContext

    s = await LLMTrajectorySummary(obs_chars=400, max_input_chars=6000).summarize_trajectory(
        make_task(), traj, RunContext(backend))
    assert backend.calls == 1
    sent = request_text(backend.requests[0])
    assert len(sent) < 6000 + 3000  # the prompt around the trimmed run
    assert "x" * 401 not in sent and "[...]" in sent and "steps omitted" in sent
    quotes = [e.quote for e in s.evidence]
    assert "1 failed, 2 passed in 0.3s" in quotes and "all 57 tests passed" not in quotes
    assert s.final_patch == FIX_PATCH and s.files_changed == ["calc.py"] and s.usage.calls == 1


async def test_llm_summary_falls_back_to_rules_after_bad_json():
    from tts.context import RunContext

    backend = ScriptedBackend(["not json at all", "still {not json"])
    traj = read_mswea(FIX / "mswea_v11_toolcalls.traj.json")
    s = await LLMTrajectorySummary(retries=1).summarize_trajectory(make_task(), traj, RunContext(backend))
    assert backend.calls == 2 and "could not be used" in request_text(backend.requests[1])
    assert s == RuleTrajectorySummary().summarize_trajectory(traj).model_copy(update={"usage": s.usage})


def make_task():
    from tts.records import Task

    return Task(id="toy", prompt="add subtracts")


def test_render_trajectory_keeps_first_and_last_steps():
    steps = [Step(action=f"cmd{i}", observation="o" * 100, exit_code=i % 2) for i in range(100)]
    text = render_trajectory(Trajectory(id="t", steps=steps, patch="P"), obs_chars=50, max_chars=2000)
    assert "$ cmd0" in text and "$ cmd1" in text and "$ cmd99" in text and "$ cmd50" not in text
    assert "(exit code 1)" in text and text.endswith("# Final patch:\nP")


# -- RTV over rollouts ------------------------------------------------------------------------------------
def patch_agent(patches):
    """Rollout k of every round returns patches[k]."""
    return ScriptedRunner(lambda inst, prior, rid: patches[int(rid.rsplit("-", 1)[1]) % len(patches)])


async def test_rtv_picks_the_patch_that_fixes_the_test(toy, tmp_path):
    patches = [WRONG_PATCHES["multiplies"], WRONG_PATCHES["breaks-sub"], FIX_PATCH, WRONG_PATCHES["multiplies"]]
    backend = ScriptedBackend(model)
    strat = AgenticPDR(rollouts=4, rounds=1, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=3))
    res = await strat.run_instance(toy, patch_agent(patches), backend)
    assert res.patch == FIX_PATCH and res.chosen_id == f"{toy.instance_id}/round0-2"
    assert res.judge_calls == 3 * (4 - 1) == backend.calls  # V * (N - 1)
    assert res.summary_calls == 0 and res.rollouts == 4
    report = grade_local(toy, res.patch, model_name="rtv", run_id="t", out_dir=tmp_path)
    assert report[toy.instance_id]["resolved"] is True
    for wrong in set(patches) - {FIX_PATCH}:  # and the grader would have failed the others
        assert not grade_local(toy, wrong, model_name="w", run_id="t", out_dir=tmp_path)[toy.instance_id]["resolved"]


async def test_rtv_leaves_empty_patches_out_of_the_final_pick(toy):
    backend = ScriptedBackend(["WINNER: 1"])
    strat = AgenticPDR(rollouts=3, rounds=1, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=2))
    res = await strat.run_instance(toy, patch_agent(["", "", WRONG_PATCHES["multiplies"]]), backend)
    assert res.patch == WRONG_PATCHES["multiplies"] and res.judge_calls == 0 and backend.calls == 0


# -- agentic PDR -----------------------------------------------------------------------------------------
async def test_agentic_pdr_conditions_round_1_on_the_selected_summaries(toy, tmp_path):
    patches = [WRONG_PATCHES["multiplies"], FIX_PATCH, WRONG_PATCHES["breaks-sub"], FIX_PATCH]
    runner = patch_agent(patches)
    backend = ScriptedBackend(model)
    strat = AgenticPDR(rollouts=4, rounds=2, select_k=2, summarizer=LLMTrajectorySummary(), selector=swe_rtv(votes=3))
    res = await strat.run_instance(toy, runner, backend, rundir=RunDir(tmp_path / "run"))
    iid = toy.instance_id
    round0 = [c for c in runner.calls if "/round0-" in c[1]]
    round1 = [c for c in runner.calls if "/round1-" in c[1]]
    assert len(round0) == 4 and len(round1) == 4
    assert all(prior == [] for _, _, prior in round0)  # round 0: no context at all
    selected = res.rounds[0].selected_ids
    assert len(selected) == 2 and set(selected) == {f"{iid}/round0-1", f"{iid}/round0-3"}  # the two fixes
    assert all(sorted(prior) == sorted(selected) for _, _, prior in round1)
    assert res.rounds[1].prior_ids == selected
    # call counts: V*(N-K) + V*(N-1) judge calls; one summary per rollout
    assert res.judge_calls == 3 * (4 - 2) + 3 * (4 - 1) == 15
    assert res.summary_calls == 8 and backend.calls == 15 + 8
    assert GOOD in res.patch
    # every step is a file; a rerun makes no rollout and no model call
    rd = RunDir(tmp_path / "run")
    assert len(rd.rollouts_of(iid)) == 8 and rd.selection(iid, 0).is_file() and rd.result(iid).is_file()
    again_runner = ScriptedRunner(lambda *a: pytest.fail("a saved rollout was run again"))
    again_backend = ScriptedBackend(lambda r: pytest.fail("a saved step called the model again"))
    again = await strat.run_instance(toy, again_runner, again_backend, rundir=rd)
    assert again.patch == res.patch and again.chosen_id == res.chosen_id and again.judge_calls == 0


async def test_agentic_pdr_prompts_of_conditioned_mini_swe_agent_rollouts_carry_the_summaries(toy, tmp_path):
    pytest.importorskip("minisweagent", reason="the swe extra is not installed (pip install -e '.[swe]')")
    def factory(instance, rollout_id, cfg):
        from minisweagent.models.test_models import DeterministicModel, make_output

        cmds = [FIX_COMMAND, "git diff > patch.txt", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"]
        return DeterministicModel(outputs=[make_output("go", [{"command": c}], cost=0.0) for c in cmds],
                                  cost_per_call=0.0)

    rd = RunDir(tmp_path / "run")
    strat = AgenticPDR(rollouts=2, rounds=2, select_k=1, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=1))
    res = await strat.run_instance(toy, MiniSweAgentRunner(model_factory=factory), ScriptedBackend(["WINNER: 1"]),
                                   rundir=rd)
    iid = toy.instance_id
    (sel,) = res.rounds[0].selected_ids
    chosen = rd.load(rd.summary(iid, 0, int(sel.rsplit("-", 1)[1])), TrajectorySummary)
    for k in range(2):
        r0 = rd.load(rd.rollout(iid, 0, k), Trajectory)
        r1 = rd.load(rd.rollout(iid, 1, k), Trajectory)
        assert "prior_attempts" not in r0.messages[1].content
        assert render_prior([chosen]) in r1.messages[1].content and r1.metadata["prior_ids"] == [sel]
    assert res.patch and GOOD in res.patch


async def test_many_instances_share_the_in_flight_bound(tmp_path):
    insts = [make_toy_instance(tmp_path, f"toy__calc-{i}") for i in range(3)]
    state = {"now": 0, "peak": 0}

    async def agent(inst, prior, rid):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1
        return Trajectory(id=rid, outcome="Submitted", patch=FIX_PATCH, metadata={"cost_usd": 0.5})

    strat = AgenticPDR(rollouts=4, rounds=2, select_k=2, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=1))
    res = await run_instances(strat, insts, ScriptedRunner(agent), ScriptedBackend(["WINNER: 1"]),
                              max_rollouts_in_flight=5, progress=False)
    assert [r.instance_id for r in res] == [i.instance_id for i in insts]
    assert all(r.error is None and r.patch == FIX_PATCH for r in res)
    assert [r.agent_cost_usd for r in res] == [0.5 * 4 * 2] * 3
    assert state["peak"] == 5

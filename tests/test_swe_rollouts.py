"""Rollouts with mini-swe-agent used as a library, on a toy SWE-bench-shaped instance built here:
its deterministic model and local environment, the diff fallback, prior summaries in the
instance prompt, and the litellm path (tool calls) against the project's loopback server."""

import json
import os

import pytest

from tts.records import TrajectorySummary
from tts.swe.grade import grade_local
from tts.swe.readers import read_mswea
from tts.swe.runners import MiniSweAgentRunner, render_prior
from tts.swe.toy import FIX_COMMAND, make_toy_instance
from tts.testing import LoopbackServer

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_instance(tmp_path_factory.mktemp("toy"))


def deterministic(commands):
    """A model factory: each rollout gets a fresh DeterministicModel replaying `commands`."""
    pytest.importorskip("minisweagent", reason="the swe extra is not installed (pip install -e '.[swe]')")
    def factory(instance, rollout_id, model_config):
        from minisweagent.models.test_models import DeterministicModel, make_output

        outs = [make_output(f"THOUGHT: step {i}", [{"command": c}], cost=0.0) for i, c in enumerate(commands)]
        return DeterministicModel(outputs=outs, cost_per_call=0.0)
    return factory


async def test_deterministic_rollout_submits_a_patch_that_fixes_the_test(toy, tmp_path):
    env_before = dict(os.environ)
    runner = MiniSweAgentRunner(model_factory=deterministic([FIX_COMMAND, "git diff > patch.txt", SUBMIT]),
                                step_limit=10, native_dir=str(tmp_path / "native"))
    t = await runner.run(toy, rollout_id="toy/round0-0")
    # mini-swe-agent's own file for the rollout, read back by our reader, tells the same story
    native = read_mswea(tmp_path / "native" / "toy_round0-0.traj.json")
    assert native.steps == t.steps and native.outcome == "Submitted" and native.patch == t.patch
    assert native.task_id == toy.instance_id
    assert (t.id, t.task_id, t.outcome) == ("toy/round0-0", toy.instance_id, "Submitted")
    assert t.metadata["patch_source"] == "submission" and t.metadata["prior_ids"] == []
    assert "-    return a - b\n+    return a + b" in t.patch
    assert [(s.action, s.exit_code) for s in t.steps] == [(FIX_COMMAND, 0), ("git diff > patch.txt", 0),
                                                         (SUBMIT, None)]
    assert toy.problem_statement in t.messages[1].content and "prior_attempts" not in t.messages[1].content
    # the import switched mini-swe-agent's start-up side effects off and left the environment as it was
    assert dict(os.environ) == env_before
    assert "MSWEA_GLOBAL_CONFIG_DIR" not in os.environ and "MSWEA_SILENT_STARTUP" not in os.environ
    # each rollout works in its own clone: the source repository is untouched
    assert "return a - b" in (open(os.path.join(toy.repo_path, "calc.py")).read().splitlines()[1])
    report = grade_local(toy, t.patch, model_name="det", run_id="r", out_dir=tmp_path)
    assert report[toy.instance_id]["resolved"] is True


async def test_rollout_that_never_submits_falls_back_to_the_diff(toy):
    runner = MiniSweAgentRunner(model_factory=deterministic([FIX_COMMAND, "echo still working", "echo more"]),
                                step_limit=2)
    t = await runner.run(toy, rollout_id="x")
    assert t.outcome == "LimitsExceeded"
    assert t.metadata["patch_source"] == "git-diff"
    assert t.patch.startswith("diff --git a/calc.py b/calc.py") and "+    return a + b" in t.patch


async def test_rollout_whose_model_raises_still_returns_a_trajectory(toy):
    # a model with nothing left to say raises IndexError inside agent.run, which re-raises it
    t = await MiniSweAgentRunner(model_factory=deterministic([])).run(toy, rollout_id="boom")
    assert t.outcome == "IndexError" and t.patch is None and t.metadata["patch_source"] == "git-diff"
    assert [m.role for m in t.messages] == ["system", "user"]


async def test_prior_summaries_reach_the_instance_prompt(toy):
    prior = [TrajectorySummary(source_id="a", approach="edited add() on line 2", final_patch="diff --git a/calc.py"),
             TrajectorySummary(source_id="b", status_claim="tests pass after the fix", failure_modes=["broke sub"])]
    runner = MiniSweAgentRunner(model_factory=deterministic([FIX_COMMAND, "git diff > patch.txt", SUBMIT]))
    t = await runner.run(toy, prior, rollout_id="c")
    prompt = t.messages[1].content
    assert t.metadata["prior_ids"] == ["a", "b"]
    assert render_prior(prior) in prompt
    assert "### Earlier attempt 2" in prompt and "broke sub" in prompt and "edited add() on line 2" in prompt
    # right after the issue, before the instructions
    assert prompt.index("<prior_attempts>") > prompt.index(toy.problem_statement)
    assert prompt.index("<prior_attempts>") < prompt.index("<instructions>")


def tool_call_reply(body):
    """The loopback model: one bash tool call per turn, chosen by how many tool results it has seen."""
    assert body["tools"][0]["function"]["name"] == "bash"
    seen = sum(1 for m in body["messages"] if m.get("role") == "tool")
    command = [FIX_COMMAND, "git diff > patch.txt", SUBMIT][min(seen, 2)]
    msg = {"role": "assistant", "content": f"THOUGHT: turn {seen}",
           "tool_calls": [{"id": f"call_{seen}", "type": "function",
                           "function": {"name": "bash", "arguments": json.dumps({"command": command})}}]}
    return {"id": f"chatcmpl-{seen}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


async def test_litellm_tool_call_path_against_the_loopback_server(toy, tmp_path):
    pytest.importorskip("minisweagent", reason="the swe extra is not installed (pip install -e '.[swe]')")
    async with LoopbackServer(reply=tool_call_reply) as server:
        runner = MiniSweAgentRunner(model="openai/loopback-agent", model_kwargs={"api_base": server.url,
                                                                                 "api_key": "sk-test"},
                                    step_limit=6)
        t = await runner.run(toy, rollout_id="llm")
    assert t.outcome == "Submitted" and t.metadata["patch_source"] == "submission"
    assert len(server.bodies) == 3
    first = server.bodies[0]
    assert first["model"] == "loopback-agent" and first["tools"][0]["function"]["name"] == "bash"
    # mini-swe-agent strips its `extra` bookkeeping before sending; tool results go back by id
    assert all("extra" not in m for b in server.bodies for m in b["messages"])
    assert [m["tool_call_id"] for m in server.bodies[2]["messages"] if m["role"] == "tool"] == ["call_0", "call_1"]
    assert [s.action for s in t.steps] == [FIX_COMMAND, "git diff > patch.txt", SUBMIT]
    assert grade_local(toy, t.patch, model_name="loop", run_id="r", out_dir=tmp_path)[toy.instance_id]["resolved"]


async def test_runner_errors_name_the_fix(toy, monkeypatch):
    from tts.errors import UsageError
    from tts.swe import docker_probe

    monkeypatch.setattr(docker_probe, "docker_available", lambda: False)
    with pytest.raises(UsageError, match="--env local"):
        await MiniSweAgentRunner(env="docker").run(toy)
    remote = toy.model_copy(update={"repo_path": None, "repo": "astropy/astropy"})
    with pytest.raises(UsageError, match="no local repository"):
        await MiniSweAgentRunner().run(remote)


def text_reply(body):
    """The loopback model in the text format: one ```mswea_bash_command block per turn, no tools."""
    assert "tools" not in body
    turn = sum(1 for m in body["messages"] if m.get("role") == "assistant")
    command = [FIX_COMMAND, "git diff > patch.txt", SUBMIT][min(turn, 2)]
    content = f"THOUGHT: turn {turn}\n\n```mswea_bash_command\n{command}\n```"
    return {"id": f"t{turn}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


async def test_litellm_text_based_model_class(toy):
    pytest.importorskip("minisweagent", reason="the swe extra is not installed (pip install -e '.[swe]')")
    async with LoopbackServer(reply=text_reply) as server:
        runner = MiniSweAgentRunner(model="openai/loopback-text", model_class="litellm_textbased",
                                    config_spec="swebench_backticks.yaml", step_limit=6,
                                    model_kwargs={"api_base": server.url, "api_key": "sk-test"})
        t = await runner.run(toy, rollout_id="text")
    assert t.outcome == "Submitted" and len(server.bodies) == 3
    assert [s.action for s in t.steps] == [FIX_COMMAND, "git diff > patch.txt", SUBMIT]
    assert [s.exit_code for s in t.steps] == [0, 0, None] and "+    return a + b" in t.patch

"""Real clients against `tts serve`: litellm (`openai/...` with api_base pointing at us) and
mini-swe-agent, whose every step is a self-consistency vote over tool calls, on the offline toy
SWE-bench instance, end to end (the patch it submits is graded)."""

import json

import pytest

from tts.backends.openai_http import OpenAIHTTPBackend
from tts.build import stack_wrappers
from tts.serve.app import TTSServer
from tts.spec import strategy_from_spec
from tts.testing import LoopbackServer


async def serve(up, spec, **kw):
    backend = stack_wrappers(OpenAIHTTPBackend("loopback-agent", up.url), retries=0, pricing=False)
    return await TTSServer(strategy_from_spec(spec), backend, model="loopback-agent", **kw).start()


async def test_litellm_as_a_client_plain_and_streamed():
    from tts._litellm import import_litellm

    litellm = import_litellm()
    async with LoopbackServer() as up:
        tts = await serve(up, {"kind": "self-consistency", "n": 3}, token="tok-abcdef")
        try:
            r = await litellm.acompletion(model="openai/loopback-agent", api_base=tts.url, api_key="tok-abcdef",
                                          messages=[{"role": "user", "content": "What is 7 + 8?"}],
                                          extra_body={"tts": {"n": 2}}, num_retries=0)
            assert "ANSWER: 15" in r.choices[0].message.content
            assert up.stats["ok"] == 2 and r.usage.total_tokens > 0
            up.reset()
            stream = await litellm.acompletion(model="openai/loopback-agent", api_base=tts.url, api_key="tok-abcdef",
                                               messages=[{"role": "user", "content": "What is 1 + 8?"}], stream=True,
                                               stream_options={"include_usage": True}, num_retries=0)
            text, usage = "", None
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                usage = getattr(chunk, "usage", None) or usage
            assert "ANSWER: 9" in text and up.stats["ok"] == 3
            assert usage is not None and usage.total_tokens > 0
            with pytest.raises(litellm.exceptions.AuthenticationError):
                await litellm.acompletion(model="openai/loopback-agent", api_base=tts.url, api_key="wrong",
                                          messages=[{"role": "user", "content": "hi"}], num_retries=0)
        finally:
            await tts.stop()


def noisy_agent():
    """The upstream agent model: one bash tool call per turn, chosen by how many tool results it
    has seen; every third sample proposes a wrong command, which the vote must outweigh."""
    from tts.swe.toy import FIX_COMMAND

    submit = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"
    count = {"n": 0}

    def reply(body):
        assert body["tools"][0]["function"]["name"] == "bash"
        seen = sum(1 for m in body["messages"] if m.get("role") == "tool")
        k = count["n"]
        count["n"] += 1
        command = [FIX_COMMAND, "git diff > patch.txt", submit][min(seen, 2)]
        if k % 3 == 2:
            command = "echo wrong turn"
        msg = {"role": "assistant", "content": f"THOUGHT: turn {seen}",
               "tool_calls": [{"id": f"call_{seen}_{k}", "type": "function",
                               "function": {"name": "bash", "arguments": json.dumps({"command": command})}}]}
        return {"id": f"c{k}", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
    return reply


async def test_mini_swe_agent_through_tts_serve_solves_the_toy_instance(tmp_path, monkeypatch):
    pytest.importorskip("minisweagent")
    monkeypatch.setenv("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "1")  # a failure fails the test, fast
    from tts.swe.grade import grade_local
    from tts.swe.runners import MiniSweAgentRunner
    from tts.swe.toy import FIX_COMMAND, make_toy_instance

    toy = make_toy_instance(tmp_path / "toy")
    async with LoopbackServer(reply=noisy_agent()) as up:
        tts = await serve(up, {"kind": "self-consistency", "n": 3}, trace_dir=tmp_path / "traces")
        try:
            runner = MiniSweAgentRunner(model="openai/loopback-agent", step_limit=6,
                                        model_kwargs={"api_base": tts.url, "api_key": "unused"})
            t = await runner.run(toy, rollout_id="via-tts-serve")
        finally:
            await tts.stop()
    assert t.outcome == "Submitted"
    # three steps, three samples each: the wrong third sample never won
    assert [s.action for s in t.steps] == [FIX_COMMAND, "git diff > patch.txt",
                                           "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"]
    assert up.stats["ok"] == 9
    # the agent's tool results went upstream by the ids of the calls tts serve returned
    last = up.bodies[-1]["messages"]
    ids = [m["tool_call_id"] for m in last if m["role"] == "tool"]
    returned = [c["id"] for m in last if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert ids == returned and len(ids) == 2
    assert len(list((tmp_path / "traces").glob("*.jsonl"))) == 3
    assert grade_local(toy, t.patch, model_name="tts-serve", run_id="r", out_dir=tmp_path)[toy.instance_id]["resolved"]

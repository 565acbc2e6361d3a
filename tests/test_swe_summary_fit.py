"""The LLM trajectory summarizer fits the model's context window: it learns the window (a field,
the server's /v1/models, litellm's model info, the embedded model), cuts the trajectory to fit
(task, last steps, errors and the patch kept; the cut said), retries once smaller on a context
error, and falls back to the rule summary on any model error with one warning line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tts._litellm import import_litellm
from tts.context import RunContext
from tts.errors import PermanentError, ServerError
from tts.records import Step, Task, Trajectory
from tts.swe import context_window as cw
from tts.swe.summarize import PROMPT_CHARS_PER_TOKEN, LLMTrajectorySummary, RuleTrajectorySummary, fit_trajectory
from tts.testing import LoopbackServer, ScriptedBackend, request_text

REAL = Path(__file__).resolve().parents[2] / "shared" / "swe-real" / "data"
GOOD = json.dumps({"approach": "edited the rule", "actions": ["ran tests"], "evidence": [],
                   "status_claim": "fixed", "progress": "verified"})


def long_run() -> Trajectory:
    """60 steps with long outputs, a failing step in the middle, and a patch."""
    steps = [Step(thought=f"thinking {i}", action=f"cmd{i}", observation=f"out{i} " + "x" * 2000, exit_code=0)
             for i in range(60)]
    steps[30] = Step(action="python -m pytest -q", observation="E   AssertionError: boom\n1 failed in 0.1s",
                     exit_code=1)
    patch = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-a - b\n+a + b\n"
    return Trajectory(id="t", steps=steps, patch=patch, outcome="Submitted")


def window_backend(window: int) -> ScriptedBackend:
    """A model that refuses, like llama.cpp does, any prompt + reply over its window (chars / 3 as tokens)."""
    def reply(request):
        asked = len(request_text(request)) / PROMPT_CHARS_PER_TOKEN + (request.max_tokens or 0)
        if asked > window:
            return PermanentError(f"HTTP 400: Requested tokens ({int(asked)}) exceed context window of {window}",
                                  status=400)
        return GOOD
    return ScriptedBackend(reply)


async def test_the_prompt_fits_the_window_and_keeps_task_errors_last_steps_and_patch():
    backend = window_backend(2048)
    task = Task(id="x", prompt="Rule L060 could give a specific error message " * 40)
    s = await LLMTrajectorySummary(context_tokens=2048).summarize_trajectory(task, long_run(), RunContext(backend))
    assert backend.calls == 1 and s.model == "scripted"  # one call, accepted: no 400
    req = backend.requests[0]
    assert req.max_tokens <= 2048 // 4
    text = request_text(req)
    assert len(text) / PROMPT_CHARS_PER_TOKEN + req.max_tokens <= 2048
    assert "Rule L060 could give" in text and "$ cmd59" in text and "$ python -m pytest -q" in text
    assert "E   AssertionError: boom" in text and "+a + b" in text and "$ cmd30" not in text
    assert "[cut to fit the model's context:" in text and "steps omitted" in text
    assert "summarized from a cut trajectory" in s.progress and s.final_patch == long_run().patch


async def test_the_window_comes_from_the_servers_models_list():
    class Server(LoopbackServer):
        async def _models(self, request):
            from aiohttp import web

            return web.json_response({"data": [{"id": "served-model", "max_model_len": 3000}]})

    async with Server() as server:
        from tts.backends.openai_http import OpenAIHTTPBackend
        from tts.build import stack_wrappers

        backend = stack_wrappers(OpenAIHTTPBackend("served-model", server.url))
        assert await cw.context_window(backend) == 3000
        await backend.aclose()


def test_model_list_entries_in_the_shapes_servers_write():
    assert cw._from_entry({"id": "m", "context_length": 8192}) == 8192  # OpenRouter, LM Studio
    assert cw._from_entry({"id": "m", "max_model_len": 4096}) == 4096  # vLLM
    assert cw._from_entry({"id": "m", "meta": {"n_ctx_train": 2048}}) == 2048  # llama.cpp
    assert cw._from_entry({"id": "m", "object": "model"}) is None


def test_litellm_model_info_gives_known_windows():
    import_litellm()  # litellm is a core dependency; imported offline, never with a bare `import litellm`
    assert cw._ask_litellm("gpt-4o-mini") == 128000
    assert cw._ask_litellm("no-such-provider/no-such-model") is None


def test_the_embedded_model_knows_its_window():
    from tts import local

    if not all(local._installed(m) for m in local._REQUIRED):
        pytest.skip("the 'local' extra is not installed")
    assert local.LocalBackend().context_tokens == local.N_CTX == 2048


async def test_a_context_error_is_retried_once_smaller():
    seen = []

    def reply(request):
        seen.append(len(request_text(request)))
        if len(seen) == 1:
            return PermanentError("HTTP 400: This model's maximum context length is 1000 tokens", status=400)
        return GOOD

    backend = ScriptedBackend(reply)
    s = await LLMTrajectorySummary(max_input_chars=20000).summarize_trajectory(
        Task(id="x", prompt="fix it"), long_run(), RunContext(backend))
    assert backend.calls == 2 and seen[1] < seen[0] * 0.7 and s.model == "scripted"


@pytest.mark.parametrize("error", [ServerError("HTTP 500: boom", status=500),
                                   PermanentError("HTTP 400: Requested tokens exceed context window", status=400),
                                   PermanentError("HTTP 404: no such model", status=404)])
async def test_any_model_error_falls_back_to_the_rule_summary_with_one_warning(caplog, error):
    backend = ScriptedBackend([error])
    traj = long_run()
    with caplog.at_level(logging.WARNING, logger="tts.swe"):
        s = await LLMTrajectorySummary().summarize_trajectory(Task(id="x", prompt="p"), traj, RunContext(backend))
    assert s == RuleTrajectorySummary().summarize_trajectory(traj).model_copy(update={"usage": s.usage})
    warnings = [r for r in caplog.records if r.name == "tts.swe"]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "using the rule summary instead" in warnings[0].getMessage() and type(error).__name__ in warnings[0].message


def test_fit_trajectory_says_what_it_cut_and_keeps_everything_when_it_fits():
    small = Trajectory(id="s", steps=[Step(action="ls", observation="a", exit_code=0)], patch="P")
    text, note = fit_trajectory(small)
    assert note == "" and "[cut" not in text and text.endswith("# Final patch:\nP")
    text, note = fit_trajectory(long_run(), max_chars=3000)
    assert len(text) <= 3000 + 200 and "of 60 steps omitted" in note and "outputs trimmed" in note
    big_patch = long_run().model_copy(update={"patch": "diff --git a/x b/x\n" + "+y\n" * 3000})
    assert "patch cut to" in fit_trajectory(big_patch, max_chars=3000)[1]


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real agent runs not found at {REAL}")
async def test_a_real_long_run_fits_smollm2s_window():
    from tts.swe.readers import read_mswea

    traj = read_mswea(REAL / "mswea-1.1" / "deepseek_lite_dev_noparallel" / "pylint-dev__astroid-1978.traj.json")
    backend = window_backend(2048)
    s = await LLMTrajectorySummary(context_tokens=2048).summarize_trajectory(
        Task(id="x", prompt="astroid issue"), traj, RunContext(backend))
    assert backend.calls == 1 and s.model == "scripted" and s.final_patch == traj.patch

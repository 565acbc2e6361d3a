"""The real coding agents from npm, end to end through `tts serve`: Codex CLI on `/v1/responses`
and Claude Code on `/v1/messages`, each behind a strategy, over a scripted loopback upstream.

The task: a file in a temp directory holds a number the model cannot guess. The upstream model
(scripted) first calls the agent's shell tool to read it, then, once the tool's output is in the
conversation, answers with the number. So the agent's final answer holds the number only if the
whole loop worked: our tool call reached the agent in its protocol, the agent ran it, and its
result came back through us upstream. Both run offline: HOME is a temp dir, telemetry and
update checks are off. CI installs both agents (.ci/run); without node the tests skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil

import pytest

from tts.backends.openai_http import OpenAIHTTPBackend
from tts.build import stack_wrappers
from tts.serve.app import TTSServer
from tts.spec import strategy_from_spec
from tts.testing import LoopbackServer

SHELL_TOOLS = {"exec_command": "cmd", "shell": "command", "Bash": "command"}
# PDR's later rounds answer a rewritten conversation that still carries the agent's tools (agent turns).
STRATEGIES = [{"kind": "self-consistency", "n": 3}, {"kind": "pdr", "drafts": [3, 1], "distill": "top-k"}]


def need(binary: str) -> str:
    if shutil.which("node") is None:
        print(f"SKIP: node is not installed, so {binary} (from npm) cannot run")
        pytest.skip("node is not installed: the npm agents cannot run")
    path = shutil.which(binary)
    assert path, f"{binary} is not on PATH: install it with npm install -g (.ci/run does)"
    return path


class ScriptedAgentModel:
    """The upstream model: read the file with the shell tool, then report the number it saw."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def __call__(self, body: dict) -> dict:
        self.bodies.append(body)
        tools = {t["function"]["name"] for t in body.get("tools") or []}
        shell = next((name for name in SHELL_TOOLS if name in tools), None)
        results = [m for m in body["messages"] if m.get("role") == "tool"]
        msg: dict = {"role": "assistant", "content": "OK."}
        finish = "stop"
        if results:
            found = re.findall(r"\d{5,}", json.dumps(results[-1].get("content")))
            msg["content"] = f"The number in number.txt is {found[-1] if found else 'missing'}."
        elif shell is not None:
            args = {SHELL_TOOLS[shell]: "cat number.txt"}
            if shell == "Bash":
                args["description"] = "Read number.txt"
            msg = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{len(self.bodies)}", "type": "function",
                 "function": {"name": shell, "arguments": json.dumps(args)}}]}
            finish = "tool_calls"
        return {"id": f"c{len(self.bodies)}", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}

    def with_tool_result(self, number: str) -> list[dict]:
        return [b for b in self.bodies if any(m.get("role") == "tool" and number in json.dumps(m.get("content"))
                                              for m in b["messages"])]


async def run_agent(argv: list[str], cwd, env: dict, timeout: float = 240) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def task_dir(tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    number = str(random.Random(str(tmp_path)).randint(10**6, 10**7))
    (work / "number.txt").write_text(f"the secret number is {number}\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "_TOKEN"))}
    env.update(HOME=str(home), NO_COLOR="1")
    return work, home, number, env


async def serving(up, spec, **kw):
    backend = stack_wrappers(OpenAIHTTPBackend("upstream-model", up.url), retries=0, pricing=False)
    return await TTSServer(strategy_from_spec(spec), backend, model="upstream-model", **kw).start()


@pytest.mark.parametrize("spec", STRATEGIES, ids=["self-consistency", "pdr"])
async def test_codex_exec_runs_its_turns_through_tts_serve(tmp_path, spec):
    codex = need("codex")
    work, home, number, env = task_dir(tmp_path)
    model = ScriptedAgentModel()
    async with LoopbackServer(reply=model) as up:
        tts = await serving(up, spec, token="tok-codex-123")
        try:
            (home / ".codex").mkdir()
            (home / ".codex" / "config.toml").write_text(codex_config(tts.url))
            env.update(CODEX_HOME=str(home / ".codex"), TTS_TOKEN="tok-codex-123")
            last = tmp_path / "last.txt"
            rc, out, err = await run_agent([codex, "exec", "--skip-git-repo-check", "--sandbox", "workspace-write",
                                            "--output-last-message", str(last),
                                            "Read number.txt and tell me the number in it."], work, env)
        finally:
            await tts.stop()
    print(f"codex exec ({spec['kind']}): rc={rc}, {tts.requests_served} requests to tts serve, "
          f"{len(model.bodies)} upstream calls; last message: {last.read_text().strip() if last.exists() else None!r}")
    assert rc == 0, f"codex exec failed ({rc}):\n{out[-2000:]}\n{err[-3000:]}"
    assert f"The number in number.txt is {number}." in last.read_text()
    check_upstream(model, number, spec, tool="exec_command")


def codex_config(url: str) -> str:
    return f"""model = "gpt-5-codex"
model_provider = "tts"
check_for_update_on_startup = false

[model_providers.tts]
name = "tts serve"
base_url = "{url}"
wire_api = "responses"
env_key = "TTS_TOKEN"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[otel]
exporter = "none"
"""


@pytest.mark.parametrize("spec", STRATEGIES, ids=["self-consistency", "pdr"])
async def test_claude_code_runs_its_turns_through_tts_serve(tmp_path, spec):
    claude = need("claude")
    work, _, number, env = task_dir(tmp_path)
    model = ScriptedAgentModel()
    async with LoopbackServer(reply=model) as up:
        tts = await serving(up, spec, token="tok-claude-123")
        try:
            env.update(ANTHROPIC_BASE_URL=tts.url.removesuffix("/v1"), ANTHROPIC_API_KEY="tok-claude-123",
                       DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
                       CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
            rc, out, err = await run_agent([claude, "-p", "Read number.txt and tell me the number in it.",
                                            "--allowedTools", "Bash", "--output-format", "json"], work, env)
        finally:
            await tts.stop()
    print(f"claude -p ({spec['kind']}): rc={rc}, {tts.requests_served} requests to tts serve, "
          f"{len(model.bodies)} upstream calls; output: {out.strip()[-300:]!r}")
    assert rc == 0, f"claude -p failed ({rc}):\n{out[-3000:]}\n{err[-3000:]}"
    result = json.loads(out)
    assert result["result"].strip() == f"The number in number.txt is {number}.", result
    check_upstream(model, number, spec, tool="Bash")


def check_upstream(model: ScriptedAgentModel, number: str, spec: dict, tool: str) -> None:
    """The upstream saw the turn that called the tool (every sample of it) and the turn that carried
    the tool's output (with the number the model could not have guessed) back to it."""
    calling = [b for b in model.bodies if any(t["function"]["name"] == tool for t in b.get("tools") or [])
               and not any(m.get("role") == "tool" for m in b["messages"])]
    answered = model.with_tool_result(number)
    assert answered, "the tool's output never reached the upstream model"
    for body in answered:  # the agent sent back the call it was given (in its protocol) and its output
        turns = [m for m in body["messages"] if m.get("tool_calls")]
        call = turns[-1]["tool_calls"][0]
        assert call["function"]["name"] == tool
        assert json.loads(call["function"]["arguments"])[SHELL_TOOLS[tool]] == "cat number.txt"
        assert [m["tool_call_id"] for m in body["messages"] if m.get("role") == "tool"] == [call["id"]]
    if spec["kind"] == "self-consistency":
        assert len(calling) == spec["n"] and len(answered) == spec["n"]
    else:
        assert len(calling) >= spec["drafts"][0]

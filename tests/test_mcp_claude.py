"""Claude Code (`@anthropic-ai/claude-code` from npm) as the MCP client of `tts mcp`, end to end.

The agent's model is scripted: asked with the `mcp__tts__select` tool available, it calls it once
on four patches; shown the tool's result, it answers with the winner the tool named. The judge
calls of `select` go to the loopback server (the scripted judge of tests/test_mcp.py picks the
patch marked GOOD), so the winner can only reach the final answer through the tool.

The agent's model is served by `tts serve`'s Messages API (/v1/messages) in front of the scripted
upstream.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from tts.testing import LoopbackServer

pytest.importorskip("mcp")
from test_mcp import PATCHES, REPO, child_env, scripted_model

TOOL = "mcp__tts__select"
CLAUDE = shutil.which("claude")
needs_claude = pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed "
                                  "(npm install -g @anthropic-ai/claude-code; .ci/run does it)")


def agent_turn(has_tool: bool, tool_result: str | None) -> dict:
    """What the scripted agent model does next: call the tool once, then answer from its result."""
    if tool_result is not None:
        winner = re.search(r'winner\W{1,8}(\d+)', tool_result)  # JSON, or JSON quoted in JSON
        return {"text": f"FINAL: the tool picked patch {winner.group(1) if winner else 'none'}."}
    if has_tool:
        return {"tool": {"question": "Fix calc.add so that it adds.", "candidates": PATCHES,
                         "method": {"kind": "rtv", "votes": 3}}}
    return {"text": "ok"}  # Claude Code's side requests (titles, checks) get a plain reply


def upstream_reply(body: dict) -> dict:
    """The upstream of `tts serve` (OpenAI chat completions): the agent when the request offers the
    tool, the scripted judge of `select` otherwise."""
    names = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    last = body["messages"][-1]
    if TOOL not in names and last.get("role") != "tool":
        return scripted_model(body)
    turn = agent_turn(TOOL in names, json.dumps(last.get("content")) if last.get("role") == "tool" else None)
    message: dict = {"role": "assistant", "content": turn.get("text")}
    if "tool" in turn:
        message["tool_calls"] = [{"id": "call_1", "type": "function",
                                  "function": {"name": TOOL, "arguments": json.dumps(turn["tool"])}}]
    return {"id": "chatcmpl-agent", "object": "chat.completion", "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if "tool" in turn else "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}


def write_config(tmp_path: Path, loop_url: str) -> Path:
    """The one-line MCP config of docs/mcp.md, pointed at the loopback server."""
    server = {"command": sys.executable, "args": ["-m", "tts.cli.main", "mcp", "--model", "scripted", "--backend",
                                                  "openai", "--api-base", loop_url, "--no-cache"],
              "env": {"PYTHONPATH": str(REPO)}}
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"tts": server}}))
    return path


async def run_claude(tmp_path: Path, base_url: str, config: Path) -> str:
    env = {**child_env(), "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "sk-ant-test-0123456789",
           "HOME": str(tmp_path), "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "MCP_TIMEOUT": "60000",
           "MCP_CONNECTION_NONBLOCKING": "false"}  # -p waits for the MCP server before the first turn
    proc = await asyncio.create_subprocess_exec(
        CLAUDE, "-p", "Which of the four patches fixes calc.add? Use the select tool.", "--mcp-config", str(config),
        "--strict-mcp-config", "--allowedTools", TOOL, "--model", "claude-sonnet-4-5", "--max-turns", "4",
        cwd=str(tmp_path), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode() + err.decode()
    assert proc.returncode == 0, text
    return text


@needs_claude
async def test_claude_code_through_tts_serve(tmp_path):
    async with LoopbackServer(reply=upstream_reply) as loop:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tts.cli.main", "serve", "--model", "scripted", "--backend", "openai",
            "--api-base", loop.url, "--no-cache", "--port", "0", env=child_env(), cwd=str(REPO),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            url = re.search(r"listening on (http://\S+?)(/v1)?/?$", line.strip())
            assert url, line
            base = url.group(1)
            text = await run_claude(tmp_path, base, write_config(tmp_path, loop.url))
        finally:
            proc.terminate()
            await proc.wait()
    assert "FINAL: the tool picked patch 2" in text
    assert sum("WINNER: <number" in json.dumps(b["messages"]) for b in loop.bodies) == 9  # 3 contests x 3 votes

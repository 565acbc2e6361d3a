"""`tts mcp` through the `mcp` SDK's own client: a real `tts mcp` process over stdio and over
streamable HTTP, in front of the loopback server playing a scripted model (a judge that picks the
candidate marked GOOD, a grader that passes proofs of statements marked TRUE). Every tool's usage
is checked against what the loopback server served; a bad spec, a spent budget (the call's and the
server's), cancellation mid-call (the calls in flight finish and are counted, none is sent after),
progress notifications, the token, and the upstream key kept out of results and logs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from tts.cli.main import main
from tts.testing import LoopbackServer, loopback_reply

mcp = pytest.importorskip("mcp")
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-upstream-SECRET-0123456789"
TOKEN = "mcp-client-token-abcdef"
PATCHES = [
    "--- a/calc.py\n+++ b/calc.py\n-    return a - b\n+    return a * b\nThis multiplies instead.",
    "--- a/calc.py\n+++ b/calc.py\n-    return a - b\n+    return a + b  # GOOD\nThis adds, as the docstring says.",
    "--- a/calc.py\n+++ b/calc.py\n-    return a - b\n+    return b - a\nThis swaps the operands.",
    "--- a/calc.py\n+++ b/calc.py\n-    return a - b\n+    return abs(a - b)\nThis takes the distance.",
]


def _last_user(body: dict) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    content = users[-1]["content"] if users else ""
    return content if isinstance(content, str) else json.dumps(content)


def scripted_model(body: dict) -> dict:
    """The upstream model: a listwise judge names the candidate marked GOOD; a grader passes a proof
    of a statement marked TRUE and fails one of its negation ("not the case"), and the reverse for a
    statement marked FALSE; anything else is the loopback server's usual reply."""
    prompt = _last_user(body)
    if "WINNER: <number" in prompt:
        blocks = re.split(r"^## Candidate (\d+)$", prompt.split("# Candidates", 1)[1], flags=re.M)
        marked = [int(blocks[i]) for i in range(1, len(blocks), 2) if "GOOD" in blocks[i + 1]]
        text = f"WINNER: {marked[0] if marked else 1}"
    elif "## Proof to grade" in prompt:
        statement = prompt.split("## Statement", 1)[1].split("## Proof to grade", 1)[0]
        true = ("TRUE" in statement) != ("not the case" in statement)
        text = f"The proof checks out.\nFinal Grade: {7 if true else 1}/7"
    elif prompt.startswith("Prove the following statement"):
        text = "Proof: by direct computation; every step is shown."
    else:
        return loopback_reply(body)
    prompt_tokens = max(1, len(json.dumps(body["messages"])) // 4)
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                      "total_tokens": prompt_tokens + len(text.split())}}


def mcp_args(url: str, *extra: str) -> list[str]:
    return ["-m", "tts.cli.main", "mcp", "--model", "scripted", "--backend", "openai", "--api-base", url,
            "--api-key", KEY, "--no-cache", "--seed", "1", "--retries", "0", *extra]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def stdio(url: str, errlog, *extra: str) -> Client:
    params = StdioServerParameters(command=sys.executable, args=mcp_args(url, *extra), env=child_env(), cwd=str(REPO))
    return Client(stdio_client(params, errlog=errlog))


def result(res) -> dict:
    assert not res.is_error, res.content[0].text
    return res.structured_content


def served(loop: LoopbackServer) -> dict:
    s = loop.stats
    return {"calls": s["ok"], "prompt_tokens": s["prompt_tokens"], "completion_tokens": s["completion_tokens"]}


def used(out: dict) -> dict:
    u = out["usage"]
    return {"calls": u["calls"], "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"]}


async def check_tools(client: Client, loop: LoopbackServer) -> tuple[list[dict], int]:
    """Call each tool and check it against what the loopback server served; (the results, the
    calls the loopback server answered in all)."""
    outs = []
    served_before = 0

    def fresh() -> None:
        nonlocal served_before
        served_before += loop.stats["ok"]
        loop.reset()

    progress: list[float] = []

    async def on_progress(p, total, message):
        progress.append(p)

    fresh()
    out = result(await client.call_tool("solve", {"question": "What is 17 + 25?"}, progress_callback=on_progress))
    assert out["answer"] == "42" and out["votes"] == {"42": 3.0} and out["strategy"]["kind"] == "self-consistency"
    assert used(out) == served(loop) and out["usage"]["calls"] == 3
    assert progress == [1, 2, 3]  # one notification per answered model call
    outs.append(out)

    fresh()
    out = result(await client.call_tool("select", {"question": "Fix calc.add so that it adds.",
                                                   "candidates": PATCHES}))
    assert out["winner"] == "2" and out["winner_text"] == PATCHES[1] and out["method"]["kind"] == "rtv"
    ids = [r["id"] for r in out["ranking"]]
    assert ids[0] == "2" and sorted(ids) == ["1", "2", "3", "4"]
    assert len(out["contests"]) == 3 and all(len(c["votes"]) == 8 for c in out["contests"])
    final = out["contests"][-1]
    assert final["winner"] == "2" and final["votes"] == ["2"] * 8 and final["decided_by"] == "majority"
    assert used(out) == served(loop) and out["usage"]["calls"] == 24
    outs.append(out)

    fresh()
    out = result(await client.call_tool("select", {"question": "Fix calc.add.", "candidates": PATCHES,
                                                   "method": "listwise-judge"}))
    assert out["winner"] == "2" and used(out) == served(loop) and out["usage"]["calls"] == 1

    fresh()
    out = result(await client.call_tool("select", {"question": "2 + 2?", "method": {"kind": "majority"},
                                                   "candidates": ["ANSWER: 5", "ANSWER: 4", "ANSWER: 4"]}))
    assert out["winner"] == "2" and [r["id"] for r in out["ranking"]] == ["2", "3", "1"]
    assert out["contests"][0]["tally"] == {"5": 1.0, "4": 2.0} and out["usage"]["calls"] == 0 == served(loop)["calls"]

    fresh()
    out = result(await client.call_tool("check_claims", {
        "claims": ["TRUE: the sum of two even integers is even.",
                   {"statement": "FALSE: every odd integer is prime.",
                    "negation": "TRUE: some odd integer, 9 for one, is not prime."}],
        "checkers": 2}))
    verdicts = [(c["verdict"], [v["status"] for v in c["votes"]]) for c in out["claims"]]
    assert verdicts == [("proven", ["proven", "proven"]), ("disproved", ["disproved", "disproved"])]
    assert out["claims"][0]["votes"][0] == {"status": "proven", "claim_grade": 7.0, "negation_grade": 1.0}
    assert used(out) == served(loop) and out["usage"]["calls"] == 2 * 2 * 2 * 2  # claims x sides x checkers x 2
    # detached: every request holds one statement only, never the other claim or a conversation
    assert all(sum(s in json.dumps(b["messages"]) for s in ("even integers", "odd integer")) == 1 for b in loop.bodies)
    outs.append(out)

    bad = await client.call_tool("solve", {"question": "x", "strategy": {"kind": "self-consistency", "n": 0}})
    assert bad.is_error and "bad strategy" in bad.content[0].text and "field 'n'" in bad.content[0].text
    bad = await client.call_tool("select", {"question": "x", "candidates": PATCHES, "method": {"kind": "rtv",
                                                                                                 "votez": 3}})
    assert bad.is_error and "bad method" in bad.content[0].text and "votez" in bad.content[0].text

    fresh()
    spent = await client.call_tool("solve", {"question": "What is 1 + 1?", "budget": {"max_calls": 2}})
    text = spent.content[0].text
    assert spent.is_error and "budget spent: max_calls=2 reached" in text and "used 2 model calls" in text
    assert "partial answer" in text and "'2'" in text and served(loop)["calls"] == 2
    return outs, served_before + loop.stats["ok"]


async def test_stdio_lists_tools_and_serves_each_against_the_loopback_server(tmp_path):
    errlog = tmp_path / "stderr.txt"
    async with LoopbackServer(reply=scripted_model) as loop:
        with errlog.open("w") as err:
            async with stdio(loop.url, err, "--strategy", "self-consistency", "--n", "3") as client:
                listed = (await client.list_tools()).tools
                assert {t.name for t in listed} == {"solve", "select", "check_claims"}
                for t in listed:
                    assert len(t.description) > 60 and t.input_schema["properties"]
                    for name, prop in t.input_schema["properties"].items():
                        assert prop.get("description"), f"{t.name}.{name} has no description"
                select = next(t for t in listed if t.name == "select")
                assert select.input_schema["required"] == ["question", "candidates"]
                outs, total = await check_tools(client, loop)
    logs = errlog.read_text()
    assert "serving on stdio" in logs and "paid" in logs
    assert KEY not in logs and all(KEY not in json.dumps(o) for o in outs)
    # the server's running total is what the loopback server answered over the whole session
    assert total == int(re.search(r"paid (\d+) model calls", logs).group(1)) > outs[-1]["server_total"]["calls"] > 0


async def start_http(url: str, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, *mcp_args(url, "--transport", "http", "--port", "0",
                                                                          *extra),
                                                env=child_env(), cwd=str(REPO), stderr=asyncio.subprocess.PIPE)
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        lines.append(line)
        assert line, "tts mcp exited: " + "".join(lines)
        found = re.search(r"listening on (http://\S+/mcp)", line)
        if found:
            return proc, found.group(1)


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.terminate()
    rest = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
    await proc.wait()
    return rest


async def test_streamable_http_with_a_token(tmp_path):
    import httpx2

    async with LoopbackServer(reply=scripted_model) as loop:
        proc, url = await start_http(loop.url, "--strategy", "self-consistency", "--n", "3", "--token", TOKEN)
        try:
            async with httpx2.AsyncClient() as anonymous:
                refused = await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert refused.status_code == 401
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
                from mcp.client.streamable_http import streamable_http_client

                async with Client(streamable_http_client(url, http_client=http)) as client:
                    listed = (await client.list_tools()).tools
                    assert {t.name for t in listed} == {"solve", "select", "check_claims"}
                    outs, _ = await check_tools(client, loop)
        finally:
            logs = await stop(proc)
        assert proc.returncode == 0, logs
        assert KEY not in logs and TOKEN not in logs and all(KEY not in json.dumps(o) for o in outs)


async def test_a_spent_server_budget_is_a_tool_error_that_says_so(tmp_path):
    async with LoopbackServer(reply=scripted_model) as loop:
        with (tmp_path / "stderr.txt").open("w") as err:
            async with stdio(loop.url, err, "--max-calls", "4", "--strategy", "self-consistency", "--n", "6") as client:
                first = await client.call_tool("solve", {"question": "What is 2 + 2?"})
                assert first.is_error and "budget spent: max_calls=4 reached" in first.content[0].text
                assert loop.stats["ok"] == 4
                again = await client.call_tool("select", {"question": "q", "candidates": PATCHES})
                assert again.is_error and "budget spent: the server's max_calls=4 reached" in again.content[0].text
                assert "no call was sent" in again.content[0].text and loop.stats["requests"] == 4


async def test_cancelling_mid_call_lets_the_calls_in_flight_finish_and_sends_none_after(tmp_path):
    async with LoopbackServer(reply=scripted_model, latency=0.8) as loop:
        with (tmp_path / "stderr.txt").open("w") as err:
            async with stdio(loop.url, err, "--concurrency", "2", "--strategy", "self-consistency",
                             "--n", "6") as client:
                call = asyncio.create_task(client.call_tool("solve", {"question": "What is 3 + 4?"}))
                while loop.stats["in_flight"] < 2:  # two calls sent, four waiting for a slot
                    await asyncio.sleep(0.02)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                await asyncio.sleep(2.5)  # the two finish; the queued four would have been sent by now
                assert loop.stats["requests"] == 2 and loop.stats["ok"] == 2 and loop.stats["abandoned"] == 0
                after = result(await client.call_tool("solve", {"question": "What is 3 + 4?",
                                                                "strategy": "single"}))
                assert after["usage"]["calls"] == 1 and after["answer"] == "7"
                # the two cancelled calls were counted: the server's total is what the upstream served
                assert after["server_total"]["calls"] == 3 == loop.stats["ok"]
        assert "cancelled by the client; 2 calls answered" in (tmp_path / "stderr.txt").read_text()


async def test_an_upstream_error_quoting_the_key_is_redacted():
    from tts.context import SamplingDefaults
    from tts.errors import AuthError
    from tts.mcp.tool_run import Service
    from tts.mcp.toolserver import build_server
    from tts.redact import add_secret
    from tts.spec import strategy_from_spec
    from tts.testing import ScriptedBackend

    add_secret(KEY)  # as `tts mcp --api-key KEY` does: the process's one redactor knows it
    backend = ScriptedBackend([AuthError(f"Incorrect API key provided: {KEY}")])
    service = Service(backend=backend, backends={}, strategy=strategy_from_spec({"kind": "single"}),
                      defaults_for=lambda s: SamplingDefaults())
    async with Client(build_server(service)) as client:
        res = await client.call_tool("solve", {"question": "hi"})
    assert res.is_error and "model call failed: AuthError" in res.content[0].text
    assert KEY not in res.content[0].text and "***" in res.content[0].text


def test_bad_command_lines_exit_2_with_one_line(capsys, monkeypatch):
    monkeypatch.delenv("TTS_MCP_TOKEN", raising=False)
    assert main(["mcp", "--model", "m", "--transport", "http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--token" in err and "not a loopback address" in err
    assert main(["mcp", "--model", "m", "--token", "abcdefgh"]) == 2
    assert "apply to --transport http" in capsys.readouterr().err
    assert main(["mcp", "--model", "m", "--max-calls", "0"]) == 2
    assert "--max-calls must be at least 1" in capsys.readouterr().err

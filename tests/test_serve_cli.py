"""`tts serve` as a command: the bind check, and a real process behind a token, serving the
openai SDK, keeping the upstream key out of responses, traces and logs, stopping cleanly on
Ctrl-C with a request in flight."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tts.cli.main import main
from tts.testing import loopback_reply

openai = pytest.importorskip("openai")
REPO = Path(__file__).resolve().parents[1]
KEY = "sk-upstream-SECRET-0123456789"
TOKEN = "client-token-abcdef"


def test_non_loopback_without_token_exits_2_with_one_line(capsys, monkeypatch):
    monkeypatch.delenv("TTS_SERVE_TOKEN", raising=False)
    assert main(["serve", "--model", "loopback", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--token" in err and "not a loopback address" in err
    assert main(["serve", "--model", "m", "--strategy", "pdr", "--n", "3"]) == 2
    assert "--n does not apply" in capsys.readouterr().err


async def upstream_app():
    """An upstream that checks it gets the server's key, and, like some providers, quotes the key
    back in its error for a prompt containing LEAK; SLOW answers after a second."""
    from aiohttp import web

    seen = {"auth": set(), "ok": 0}

    async def chat(request):
        body = await request.json()
        auth = request.headers.get("Authorization", "")
        seen["auth"].add(auth)
        text = json.dumps(body["messages"])
        if "LEAK" in text:
            return web.json_response({"error": {"message": f"Incorrect API key provided: {auth[7:]}"}}, status=401)
        if "SLOW" in text:
            await asyncio.sleep(1.0)
        seen["ok"] += 1
        return web.json_response(loopback_reply(body))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1", seen


async def test_served_process_with_token_keeps_keys_secret_and_stops_cleanly(tmp_path):
    runner, up_url, seen = await upstream_app()
    traces = tmp_path / "traces"
    env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("TTS_SERVE_TOKEN", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tts.cli.main", "serve", "--backend", "openai", "--api-base", up_url, "--model",
        "loopback", "--api-key", KEY, "--port", "0", "--no-cache", "--retries", "1", "--strategy",
        "self-consistency", "--n", "2", "--trace-dir", str(traces), "--token", TOKEN,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(tmp_path))
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert first.startswith("tts serve: listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        c = openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=0)
        responses = []
        r = await c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": "6 + 7?"}])
        assert "ANSWER: 13" in r.choices[0].message.content
        responses.append(r.model_dump_json())
        with pytest.raises(openai.AuthenticationError):
            await openai.AsyncOpenAI(base_url=url, api_key="nope", max_retries=0).chat.completions.create(
                model="loopback", messages=[{"role": "user", "content": "1 + 1?"}])
        with pytest.raises(openai.APIStatusError) as e:
            await c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": "LEAK 1 + 1?"}])
        assert e.value.status_code == 502 and "***" in e.value.message
        responses.append(json.dumps(e.value.body))
        stream = await c.chat.completions.create(model="loopback", messages=[{"role": "user", "content": "LEAK 2"}],
                                                 stream=True)
        with pytest.raises(openai.APIError) as e2:
            async for _ in stream:
                pass
        assert "***" in str(e2.value)
        responses.append(str(e2.value))
        # Ctrl-C with a request in flight: it is answered, then the process exits 0
        slow = asyncio.ensure_future(c.chat.completions.create(
            model="loopback", messages=[{"role": "user", "content": "SLOW 2 + 2?"}]))
        await asyncio.sleep(0.4)
        proc.send_signal(signal.SIGINT)
        r_slow = await asyncio.wait_for(slow, 30)
        assert "ANSWER: 4" in r_slow.choices[0].message.content
        responses.append(r_slow.model_dump_json())
        code = await asyncio.wait_for(proc.wait(), 30)
        out, err = (await proc.stdout.read()).decode(), (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    assert code == 0, err
    assert "stopped after 4 requests" in err and "Traceback" not in err
    assert seen["auth"] == {f"Bearer {KEY}"}  # the key was used upstream...
    # ...and appears nowhere else: not in responses, traces, or the server's output
    trace_text = "".join(p.read_text() for p in traces.glob("*.jsonl"))
    assert len(list(traces.glob("*.jsonl"))) == 4
    for where, text in (("responses", "".join(responses)), ("traces", trace_text), ("stdout", first + out),
                        ("stderr", err)):
        assert KEY not in text, where
        assert TOKEN not in text, where
    assert "Incorrect API key provided: ***" in err  # the failure was logged, redacted


def test_sigterm_stops_it_cleanly(tmp_path):
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "tts.cli.main", "serve", "--backend", "openai", "--api-base",
                             "http://127.0.0.1:9/v1", "--model", "m", "--port", "0", "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path), text=True)
    try:
        assert proc.stdout.readline().startswith("tts serve: listening on http://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "stopped after 0 requests" in err and "Traceback" not in err

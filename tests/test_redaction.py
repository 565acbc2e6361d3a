"""No secret leaves the process: every command that can reach an upstream, run against a loopback
server that rejects the key with a 401 quoting it back (and the Authorization header it came in),
prints and writes not one byte of any planted secret, and still says in one line that the
credentials were rejected. Then the same at the Python level (RunResult.error, CallRecord.error,
the exceptions), and the redactor's own rules (short keys, URLs, echoed headers)."""

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tts.testing import LoopbackServer, loopback_in_thread

REPO = Path(__file__).resolve().parents[1]
KEY = f"sk-planted-{secrets.token_hex(10)}"            # --api-key / the provider's variable: rejected
JUDGE_KEY = f"sk-judge-planted-{secrets.token_hex(8)}"  # --judge-api-key: rejected
RIGHT = f"sk-accepted-{secrets.token_hex(8)}"          # the one key the upstream takes (never echoed)
TOKEN = f"tts-serve-token-{secrets.token_hex(8)}"      # tts serve --token
PLANTED = {"KEY": KEY, "JUDGE_KEY": JUDGE_KEY, "RIGHT": RIGHT, "TOKEN": TOKEN}
REJECTED = re.compile(r"rejected (this server's |the )credentials")




def command_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment whose every writable place (home, temp, caches, configs) is under `home`,
    so that grepping `home` greps everything the command wrote."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith(("_KEY", "_TOKEN", "_SECRET"))}
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        (home / name.lower()).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / name.lower())
    env.update(PYTHONPATH=str(REPO), LITELLM_LOCAL_MODEL_COST_MAP="True", COLUMNS="400",
               TTS_CACHE_DIR=str(home / "cache"), **extra)
    return env


def tts(*argv: str, home: Path, timeout: float = 300, **env: str) -> tuple[int, str, str]:
    p = subprocess.run([sys.executable, "-m", "tts.cli.main", *map(str, argv)], cwd=home, env=command_env(home, **env),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def leaks(where: str, data: bytes | str) -> list[str]:
    """Which planted secrets `data` holds, as is or cut by a line wrap."""
    raw = data.encode() if isinstance(data, str) else data
    squeezed = re.sub(rb"\s+", b"", raw)
    return [f"{where}: {name}" for name, s in PLANTED.items() if s.encode() in raw or s.encode() in squeezed]


def files_leaks(root: Path) -> list[str]:
    return [hit for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
            for hit in leaks(str(p.relative_to(root)), p.read_bytes())]


def one_rejection_line(out: str, err: str) -> list[str]:
    """Problems with how the failure was told: no traceback, and one line saying the credentials were rejected."""
    lines = [ln for ln in (out + "\n" + err).splitlines() if REJECTED.search(ln)]
    problems = ["a traceback"] if "Traceback" in err else []
    return problems + ([] if len(lines) == 1 else [f"{len(lines)} lines say the credentials were rejected"])


def http(url: str, body: dict, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def serve_protocols(base: str) -> dict[str, dict]:
    """Every protocol the server speaks: chat completions, and /v1/responses and /v1/messages when it
    has those routes (found by a probe: an unknown route is a 404)."""
    wanted = {"chat/completions": {"model": "openai/loop", "messages": [{"role": "user", "content": "1 + 2?"}]},
              "responses": {"model": "openai/loop", "input": "1 + 2?"},
              "messages": {"model": "openai/loop", "max_tokens": 64,
                           "messages": [{"role": "user", "content": "1 + 2?"}]}}
    auth = {"Authorization": f"Bearer {TOKEN}", "x-api-key": TOKEN}
    return {route: body for route, body in wanted.items()
            if route == "chat/completions" or http(f"{base}/{route}", {}, auth)[0] != 404}


def run_serve(home: Path, api_base: str) -> tuple[list[str], list[str]]:
    """`tts serve` with the planted key and token, every protocol asked non-streaming and streaming."""
    proc = subprocess.Popen([sys.executable, "-m", "tts.cli.main", "serve", "--model", "openai/loop", "--api-base",
                             api_base, "--api-key", KEY, "--judge-api-key", JUDGE_KEY, "--token", TOKEN, "--port",
                             "0", "--retries", "0", "--trace-dir", "traces"],
                            cwd=home, env=command_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    hits, problems, answers = [], [], []
    try:
        first = proc.stdout.readline()
        assert first.startswith("tts serve: listening on "), first + proc.stderr.read()
        base = first.split()[-1]
        auth = {"Authorization": f"Bearer {TOKEN}", "x-api-key": TOKEN}
        for route, body in serve_protocols(base).items():
            for stream in (False, True):
                status, text = http(f"{base}/{route}", {**body, "stream": stream}, auth)
                answers.append(text)
                hits += leaks(f"{route} stream={stream} response", text)
                if (status == 200 and not stream) or not REJECTED.search(text):
                    problems.append(f"{route} stream={stream}: {status} {text[:300]}")
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    hits += leaks("stdout", first + out) + leaks("stderr", err)
    if "Traceback" in err:
        problems.append("a traceback")
    return hits, problems


def mcp_subcommand() -> bool:
    from tts.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    return "mcp" in sub.choices


def run_mcp(home: Path, api_base: str) -> tuple[list[str], list[str]]:
    """`tts mcp` over stdio, with the same model flags as `tts serve`: each tool called with its required
    string arguments set to a question, what it answered and logged grepped."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "tts.cli.main", "mcp", "--model", "openai/loop", "--api-base", api_base, "--api-key", KEY],
        env=command_env(home), cwd=str(home))
    texts: list[str] = []

    async def drive() -> None:
        with (home / "mcp-stderr.log").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                for tool in (await session.list_tools()).tools:
                    schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None) or {}
                    props = schema.get("properties", {})
                    args = {name: "1 + 2?" for name in schema.get("required", [])
                            if props.get(name, {}).get("type") == "string"}
                    result = await session.call_tool(tool.name, args)
                    texts.append(result.model_dump_json())

    asyncio.run(drive())
    hits = [h for i, t in enumerate(texts) for h in leaks(f"tool answer {i}", t)]
    return hits, [] if any(REJECTED.search(t) for t in texts) else [f"no tool answer says so: {texts}"]


def toy_dataset(root: Path) -> Path:
    from tts.swe.toy import make_toy_instance

    row = make_toy_instance(root / "repos")
    path = root / "toy.jsonl"
    path.write_text(json.dumps(row.model_dump(exclude={"metadata"})) + "\n")
    return path


def cli_check(home: Path, *argv: str, **env: str) -> list[str]:
    """A command's leaks (what it printed, every file under its home) and how it told the failure."""
    code, out, err = tts(*argv, home=home, **env)
    return (leaks("stdout", out) + leaks("stderr", err) + files_leaks(home)
            + [f"told as: {p}" for p in one_rejection_line(out, err)] + (["exit code 0"] if code == 0 else []))


def test_no_command_prints_or_writes_a_planted_key(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "t1", "prompt": "What is 1 + 2?", "answer": "3"}) + "\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text("- {kind: single}\n- {kind: self-consistency, n: 2}\n")
    home = {name: tmp_path / name for name in ("run-litellm", "run-openai", "compare", "plan", "swe", "serve", "mcp")}
    for path in home.values():
        path.mkdir()
    with loopback_in_thread(api_key=RIGHT) as server:
        url = server.url
        jobs = {
            "tts run (litellm)": lambda: cli_check(
                home["run-litellm"], "run", tasks, "--model", "openai/loop", "--api-base", url, "--api-key", KEY,
                "--retries", "0", "--out", "out/results.jsonl", "--trace", "out/trace.jsonl"),
            # the lean client; the model's key is accepted, the judge's rejected
            "tts run (openai, judge key)": lambda: cli_check(
                home["run-openai"], "run", tasks, "--model", "loop", "--backend", "openai", "--api-base", url,
                "--api-key", RIGHT, "--judge-api-key", JUDGE_KEY, "--strategy", "rtv", "--n", "2", "--votes", "1",
                "--retries", "0", "--out", "out/results.jsonl", "--trace", "out/trace.jsonl"),
            # the key from the environment, where litellm finds it
            "tts compare": lambda: cli_check(
                home["compare"], "compare", tasks, "--model", "openai/loop", "--api-base", url, "--grid", grid,
                "--out", "cmp", "--trace", "cmp/trace.jsonl", "--retries", "0", "--quiet", OPENAI_API_KEY=KEY),
            "tts plan": lambda: cli_check(
                home["plan"], "plan", tasks, "--model", "openai/loop", "--api-base", url, "--api-key", KEY,
                "--max-cost", "1", "--price", "1,1", "--pilot", "1"),
            "tts swe run": lambda: cli_check(
                home["swe"], "swe", "run", "--dataset", toy_dataset(home["swe"]), "--run-dir", "run", "--model",
                "openai/loop", "--api-base", url, "--api-key", KEY, "--n", "2", "--rounds", "1", "--grader", "local",
                "--quiet"),
            "tts serve": lambda: told(*run_serve(home["serve"], url)) + files_leaks(home["serve"]),
        }
        if mcp_subcommand():
            jobs["tts mcp"] = lambda: told(*run_mcp(home["mcp"], url)) + files_leaks(home["mcp"])
        with ThreadPoolExecutor(3) as pool:  # separate processes: three at a time
            found = dict(zip(jobs, pool.map(lambda job: job(), jobs.values()), strict=True))
        assert server.stats["e401"] >= len(jobs)  # every command did reach the upstream with a planted key
    bad = {name: hits for name, hits in found.items() if hits}
    assert not bad, "\n".join(f"{name}: {', '.join(hits)}" for name, hits in bad.items())


def told(hits: list[str], problems: list[str]) -> list[str]:
    return hits + [f"told as: {p}" for p in problems]


@pytest.mark.skipif(shutil.which("ray") is None and not (Path(sys.executable).parent / "ray").exists(),
                    reason="the ray extra is not installed")
def test_ray_workers_keep_the_key_out_of_the_run_dir(tmp_path):
    """`tts swe rollout --executor ray`: the key travels to the workers in the setup hook; what they
    send back (the refusal) and everything Ray and the command wrote is clean."""
    pytest.importorskip("ray")
    short = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # Ray's socket paths have a length cap
    try:
        with loopback_in_thread(api_key=RIGHT) as server:
            code, out, err = tts("swe", "rollout", "--dataset", toy_dataset(tmp_path), "--run-dir", tmp_path / "run",
                                 "--model", "openai/loop", "--api-base", server.url, "--api-key", KEY, "--n", "1",
                                 "--executor", "ray", "--ray-num-cpus", "1", "--quiet", home=short, timeout=600)
            assert server.stats["e401"] >= 1, err
        hits = leaks("stdout", out) + leaks("stderr", err) + files_leaks(short) + files_leaks(tmp_path)
        assert not hits, hits
        assert list(short.rglob("session_*/logs/*")), "Ray's own logs were not where they could be grepped"
        assert code == 2 and one_rejection_line(out, err) == [], err
    finally:
        shutil.rmtree(short, ignore_errors=True)


# -- the Python API ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend_kind", ["openai", "litellm"])
async def test_results_records_and_exceptions_carry_no_key(backend_kind, tmp_path):
    from tts import run_task
    from tts.build import make_backend
    from tts.errors import AuthError
    from tts.records import Task
    from tts.seam import ChatRequest
    from tts.strategies import SelfConsistency
    from tts.trace import TraceWriter

    async with LoopbackServer(api_key=RIGHT) as server:
        model = "loop" if backend_kind == "openai" else "openai/loop"
        backend = make_backend(model, backend=backend_kind, api_base=server.url, api_key=KEY, retries=0)
        with pytest.raises(AuthError) as raised:
            await backend.complete(ChatRequest(messages=[{"role": "user", "content": "1 + 2?"}]))
        trace = TraceWriter(tmp_path / "t.jsonl")
        res = await run_task(SelfConsistency(n=2), Task(id="t", prompt="1 + 2?"), backend, on_call=trace.callback("t"))
        trace.write_result(res)
        trace.close()
        await backend.aclose()
    assert server.stats["e401"] >= 3
    error = str(raised.value)
    assert KEY not in error and KEY not in repr(raised.value.args) and REJECTED.search(error), error
    assert KEY not in "".join(traceback.format_exception(raised.value))  # nor anything chained to it
    assert res.status == "error" and res.error and KEY not in res.error and REJECTED.search(res.error)
    assert res.trace and all(r.error and KEY not in r.error and "***" in r.error for r in res.trace)
    assert KEY not in res.model_dump_json() and KEY not in (tmp_path / "t.jsonl").read_text()


# -- the redactor's rules ------------------------------------------------------------------------
def test_the_redactor_masks_given_keys_urls_and_echoed_headers_but_not_short_strings(monkeypatch):
    from tts.redact import add_secret, forget_secrets, redact, secrets_in_url

    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "env-key-0123456789")
    monkeypatch.setenv("SHORT_TOKEN", "abc")
    add_secret("given-key-abcdefgh", "x", "", None, "local", "12345678901")
    try:
        text = ("given-key-abcdefgh env-key-0123456789 x local abc 12345678901 "
                "http://h/v1?key=unknownkey99&model=m https://user:hunter2hunter2@h/v1 "
                "Authorization: Bearer other-token-777777 x-api-key: header-key-5555555 "
                '{"api_key": "json-key-44444444", "token": "logprob token text"}')
        out = redact(text)
        for gone in ("given-key-abcdefgh", "env-key-0123456789", "unknownkey99", "hunter2hunter2",
                     "other-token-777777", "header-key-5555555", "json-key-44444444"):
            assert gone not in out, (gone, out)
        for kept in (" x ", " local ", " abc ", "12345678901", "model=m", '"token": "logprob token text"'):
            assert kept in out, (kept, out)
        assert secrets_in_url("https://u:pw-secret-99@h/v1?api_key=qkey-12345678&x=1") == ["pw-secret-99",
                                                                                            "qkey-12345678"]
    finally:
        forget_secrets()

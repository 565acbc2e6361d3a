"""The Ray executor on a real Ray cluster of two nodes on loopback (`ray start --head` plus
`ray start --address`, each with its own CPUs and custom resources), the toy instance and a
deterministic agent (`ToyAgent`, which leaves a start and a done file per execution so re-runs
can be counted across processes): placement, identical results, a node killed mid-run, a driver
killed mid-run, resource bounds, errors, and no Ray process left behind."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'tts-scaling[ray]')")

from tts.records import Trajectory
from tts.swe.eval_tasks import evaluate_on
from tts.swe.pipeline import AgenticPDR, SWEResult, swe_rtv
from tts.swe.ray_cluster import LocalRayCluster, free_port, pids_with_marker
from tts.swe.ray_executor import RayExecutor
from tts.swe.rundir import RunDir, safe_name
from tts.swe.runners import ScriptedRunner
from tts.swe.summarize import RuleTrajectorySummary
from tts.swe.toy import FIX_PATCH, ToyAgent, count_runs, make_toy_instance
from tts.testing import LoopbackServer, ScriptedBackend, request_text

REPO = Path(__file__).resolve().parents[1]
GOOD = "+    return a + b"


@pytest.fixture(scope="module")
def cluster():
    c = LocalRayCluster([{"num_cpus": 1, "resources": {"first": 1}},
                         {"num_cpus": 1, "resources": {"docker": 1, "second": 1}}], pythonpath=str(REPO))
    with c:
        yield c
    assert c.pids() == []  # clean shutdown: nothing of the cluster is left


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_instance(tmp_path_factory.mktemp("toy"))


def judge(request):
    """Names the candidate whose patch fixes `add`, else candidate 1."""
    text = request_text(request)
    for num, body in enumerate(text.split("## Candidate ")[1:], 1):
        if GOOD in body:
            return f"WINNER: {num}"
    return "WINNER: 1"


def node_with(resource: str) -> str:
    import ray

    return next(n["NodeID"] for n in ray.nodes() if n["Alive"] and resource in n["Resources"])


def strategy(n: int, rounds: int) -> AgenticPDR:
    return AgenticPDR(rollouts=n, rounds=rounds, select_k=2, summarizer=RuleTrajectorySummary(),
                      selector=swe_rtv(votes=2))


def without_worker(t: Trajectory) -> dict:
    d = t.model_dump()
    d["metadata"].pop("worker", None)
    return d


def peak_in_flight(log_dir: Path) -> int:
    """The most executions that overlapped in time, from the agent's start and done files."""
    events = []
    for p in log_dir.glob("*.start"):
        done = p.with_suffix(".done")
        if done.exists():
            events += [(int(p.name.rsplit(".", 2)[1]), 1), (done.stat().st_mtime_ns, -1)]
    now = peak = 0
    for _, step in sorted(events):
        now += step
        peak = max(peak, now)
    return peak


async def test_rollouts_spread_over_both_nodes_and_match_the_local_executor(cluster, toy, tmp_path):
    strat = strategy(4, 2)
    runner = ScriptedRunner(ToyAgent(delay_s=0.3))
    local = await strat.run_instance(toy, runner, ScriptedBackend(judge), rundir=RunDir(tmp_path / "local"))
    async with RayExecutor(cluster.address, max_in_flight=4) as ex:
        remote = await strat.run_instance(toy, runner, ScriptedBackend(judge), rundir=RunDir(tmp_path / "ray"),
                                          executor=ex)
        second = node_with("second")
    keep = {"patch", "chosen_id", "rounds", "judge_calls", "summary_calls", "rollouts", "usage", "error"}
    assert remote.model_dump(include=keep) == local.model_dump(include=keep)
    assert remote.patch == FIX_PATCH and remote.rounds[1].prior_ids  # round 1 was shown round 0's picks
    iid = toy.instance_id
    nodes = set()
    for r in range(2):
        for k in range(4):
            a = RunDir(tmp_path / "local").load(RunDir(tmp_path / "local").rollout(iid, r, k), Trajectory)
            b = RunDir(tmp_path / "ray").load(RunDir(tmp_path / "ray").rollout(iid, r, k), Trajectory)
            assert without_worker(a) == without_worker(b)
            assert "worker" not in a.metadata and b.metadata["worker"]["executor"] == "ray"
            nodes.add(b.metadata["worker"]["node_id"])
    assert len(nodes) == 2 and second in nodes  # both nodes ran rollouts
    assert len(ex.placed) == 8


async def test_never_more_rollouts_in_flight_than_declared(cluster, toy, tmp_path):
    # 2 nodes x 1 CPU and 0.25 CPU a rollout would hold 8 at once: max_in_flight=3 holds it to 3
    log = tmp_path / "log"
    strat = strategy(9, 1)
    async with RayExecutor(cluster.address, rollout_cpus=0.25, max_in_flight=3) as ex:
        res = await strat.run_instance(toy, ScriptedRunner(ToyAgent(delay_s=0.5, log_dir=log)),
                                       ScriptedBackend(judge), executor=ex)
    assert res.error is None and res.patch == FIX_PATCH
    assert 2 <= peak_in_flight(log) <= 3
    # a custom resource only the second node has, 1 of it: every rollout there, one at a time
    log2 = tmp_path / "log2"
    async with RayExecutor(cluster.address, rollout_cpus=0.25, rollout_resources={"second": 1}, max_in_flight=4) as ex:
        await strat.model_copy(update={"rollouts": 4}).run_instance(
            toy, ScriptedRunner(ToyAgent(delay_s=0.3, log_dir=log2)), ScriptedBackend(judge), executor=ex)
        second = node_with("second")
    assert {p["node_id"] for p in ex.placed} == {second} and peak_in_flight(log2) == 1


async def test_a_resource_no_node_has_is_one_line_not_a_hang(cluster):
    from tts.errors import UsageError

    with pytest.raises(UsageError, match=r"a rollout task needing CPU=1, gpu_big=1 \(nodes have: CPU=1, memory="):
        await RayExecutor(cluster.address, rollout_resources={"gpu_big": 1}).start()
    import ray

    assert not ray.is_initialized()


async def test_evaluation_runs_on_the_docker_node_and_merges_into_the_run_dir(cluster, toy, tmp_path):
    preds = {toy.instance_id: {"instance_id": toy.instance_id, "model_name_or_path": "m/x", "model_patch": FIX_PATCH}}
    async with RayExecutor(cluster.address, call_resources={"docker": 1}) as ex:
        summary = await evaluate_on(ex, [toy], preds, grader="local", run_id="r1", out_dir=tmp_path)
        docker_node = node_with("docker")
    assert summary["resolved_ids"] == [toy.instance_id]
    assert [p["node_id"] for p in ex.placed] == [docker_node]
    report = tmp_path / "logs" / "run_evaluation" / "r1" / "m__x" / toy.instance_id / "report.json"
    assert json.loads(report.read_text())[toy.instance_id]["resolved"] is True
    assert json.loads((tmp_path / "m__x.r1.json").read_text())["resolved_instances"] == 1


def _cli(args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "tts.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_swebench_harness_on_a_docker_node_without_a_daemon_is_one_line(cluster, toy, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(toy.to_row()) + "\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "preds.json").write_text(json.dumps(
        {toy.instance_id: {"instance_id": toy.instance_id, "model_name_or_path": "m", "model_patch": FIX_PATCH}}))
    out = _cli(["swe", "eval", "--run-dir", str(tmp_path / "run"), "--dataset", str(rows), "--grader", "swebench",
                "--executor", "ray", "--ray-address", cluster.address, "--quiet"])
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Docker" in lines[0] and "on Ray node 127.0.0.2" in lines[0]


class KeyRecordingServer(LoopbackServer):
    """The loopback model, remembering the Authorization header of every request."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.auth: list[str] = []

    async def _chat(self, request):
        self.auth.append(request.headers.get("Authorization", ""))
        return await super()._chat(request)


def tool_call_reply(body):
    from tts.swe.toy import FIX_COMMAND

    seen = sum(1 for m in body["messages"] if m.get("role") == "tool")
    submit = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"
    cmd = [FIX_COMMAND, "git diff > patch.txt", submit][min(seen, 2)]
    call = {"name": "bash", "arguments": json.dumps({"command": cmd})}
    msg = {"role": "assistant", "content": f"THOUGHT: turn {seen}",
           "tool_calls": [{"id": f"call_{seen}", "type": "function", "function": call}]}
    return {"id": f"c{seen}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


async def test_cli_mini_swe_agent_rollouts_call_the_model_from_the_workers_with_a_key_never_logged(
        cluster, toy, tmp_path):
    secret = f"sk-{uuid.uuid4().hex}"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(toy.to_row()) + "\n")
    async with KeyRecordingServer(reply=tool_call_reply) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tts.cli.main", "swe", "rollout", "--dataset", str(rows), "--run-dir",
            str(tmp_path / "run"), "--model", "openai/loop", "--api-base", server.url, "--api-key", secret,
            "--n", "2", "--step-limit", "6", "--executor", "ray", "--ray-address", cluster.address, "--quiet",
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    rd = RunDir(tmp_path / "run")
    trajs = [rd.load(p, Trajectory) for p in rd.rollouts_of(toy.instance_id)]
    assert [t.outcome for t in trajs] == ["Submitted", "Submitted"] and all(GOOD in t.patch for t in trajs)
    assert all(t.metadata["worker"]["pid"] != proc.pid for t in trajs)  # ran in Ray workers, not the driver
    assert len(server.auth) == 6 and set(server.auth) == {f"Bearer {secret}"}  # straight from the workers
    # the key is in no output, no run-dir file and no Ray log
    assert secret not in stdout.decode() + stderr.decode()
    for root in (tmp_path / "run", Path(cluster.temp_dir)):
        for p in root.rglob("*"):
            if p.is_file() and not p.is_symlink() and p.stat().st_size < 50_000_000:
                assert secret.encode() not in p.read_bytes(), p


DRIVER = """
import asyncio, sys
from tts.swe.instance import read_instances_file
from tts.swe.pipeline import AgenticPDR, run_instances, swe_rtv
from tts.swe.ray_executor import RayExecutor
from tts.swe.runners import ScriptedRunner
from tts.swe.summarize import RuleTrajectorySummary
from tts.swe.toy import ToyAgent
from tts.testing import ScriptedBackend

async def main(address, rows, run, log):
    strat = AgenticPDR(rollouts=10, rounds=1, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=1))
    async with RayExecutor(address, max_in_flight=2) as ex:
        res = await run_instances(strat, read_instances_file(rows), ScriptedRunner(ToyAgent(0.6, log)),
                                  ScriptedBackend(["WINNER: 1"]), rundir=run, progress=False, executor=ex)
    print("done", [r.error for r in res])

asyncio.run(main(*sys.argv[1:]))
"""


def test_driver_killed_mid_run_resumes_and_repeats_nothing(cluster, toy, tmp_path):
    rows, run, log = tmp_path / "rows.jsonl", tmp_path / "run", tmp_path / "log"
    rows.write_text(json.dumps(toy.to_row()) + "\n")
    argv = [sys.executable, "-c", DRIVER, cluster.address, str(rows), str(run), str(log)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rd = RunDir(run)
    first = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(rd.rollouts_of(toy.instance_id)) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    saved_before = {p.stem for p in rd.rollouts_of(toy.instance_id)}
    assert 3 <= len(saved_before) < 10, first.stderr.read().decode()[-2000:]
    time.sleep(2)  # the dead driver's tasks are cancelled with it
    second = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0 and "done [None]" in second.stdout, second.stderr[-3000:]
    assert len(rd.rollouts_of(toy.instance_id)) == 10
    runs = count_runs(log)
    for stem in saved_before:  # what had landed before the kill never ran again
        assert runs[safe_name(f"{toy.instance_id}/{stem}")] == {"start": 1, "done": 1}
    assert all(c["done"] >= 1 for c in runs.values()) and len(runs) == 10
    assert SWEResult.model_validate_json(rd.result(toy.instance_id).read_text()).error is None


async def test_dead_address_and_missing_ray_are_one_line_exit_2(tmp_path):
    port = free_port()
    (tmp_path / "preds.json").write_text("{}")
    out = _cli(["swe", "eval", "--run-dir", str(tmp_path), "--grader", "local", "--executor", "ray",
                "--ray-address", f"127.0.0.1:{port}"], timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in out.stderr and "ray start --head" in out.stderr


def test_local_ray_instance_leaves_no_process_behind(tmp_path):
    marker = uuid.uuid4().hex
    fixture = REPO / "tests" / "fixtures" / "swe" / "mswea_v11_toolcalls.traj.json"
    toy = make_toy_instance(tmp_path)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(toy.to_row()) + "\n")
    out = _cli(["swe", "rollout", "--dataset", str(rows), "--run-dir", str(tmp_path / "run"), "--agent", "replay",
                "--replay", str(fixture), "--n", "2", "--executor", "ray", "--ray-num-cpus", "1", "--quiet"],
               env={"TTS_RAY_CLUSTER": marker, "RAY_USAGE_STATS_ENABLED": "0"})
    assert out.returncode == 0, out.stderr[-3000:]
    rd = RunDir(tmp_path / "run")
    trajs = [rd.load(p, Trajectory) for p in rd.rollouts_of(toy.instance_id)]
    assert len(trajs) == 2 and all(t.metadata["worker"]["executor"] == "ray" for t in trajs)
    deadline = time.monotonic() + 20
    while pids_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids_with_marker(marker) == []


def test_killing_a_nodes_raylet_mid_run_retries_only_the_lost_rollouts(toy, tmp_path):
    log, rd = tmp_path / "log", RunDir(tmp_path / "run")
    with LocalRayCluster([{"num_cpus": 1}, {"num_cpus": 2, "resources": {"second": 1}}],
                         pythonpath=str(REPO)) as c:
        async def main():
            async with RayExecutor(c.address, max_in_flight=3, max_retries=3) as ex:
                run = asyncio.ensure_future(strategy(8, 1).run_instance(
                    toy, ScriptedRunner(ToyAgent(delay_s=1.5, log_dir=log)), ScriptedBackend(judge), rundir=rd,
                    executor=ex))
                victim = c.raylet_pid(1)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not run.done() and not any(
                        _parent(int(p.name.split(".")[1])) == victim for p in _running(log)):
                    await asyncio.sleep(0.05)
                landed = {p.stem for p in rd.rollouts_of(toy.instance_id)}
                procs = map(int, filter(str.isdigit, os.listdir("/proc")))
                on_second = {pid for pid in procs if _parent(pid) == victim}
                c.kill_raylet(1)
                head = node_with("node:__internal_head__")  # the node left
                res = await asyncio.wait_for(run, 180)
            return res, landed, on_second, ex.placed, head

        res, landed, on_second, placed, head = asyncio.run(main())
    assert c.pids() == []
    assert res.error is None and res.patch == FIX_PATCH
    runs = count_runs(log)
    timeline = sorted(p.name for p in log.iterdir())
    assert len(runs) == 8 and len(placed) == 8 and len({p["name"] for p in placed}) == 8  # each landed once
    for stem in landed:  # what had landed before the kill never ran again
        assert runs[safe_name(f"{toy.instance_id}/{stem}")] == {"start": 1, "done": 1}, timeline
    retried = {name for name, v in runs.items() if v["start"] == 2}
    assert retried and all(v["start"] <= 2 for v in runs.values()), timeline  # the lost ones, once each
    starts_on_second = {p.name.split(".")[0] for p in log.glob("*.start") if int(p.name.split(".")[1]) in on_second}
    assert retried <= starts_on_second, timeline  # they had been on the killed node ...
    where = {safe_name(p["name"]): p["node_id"] for p in placed}
    assert all(where[name] == head for name in retried)  # ... and landed from the one left
    assert len(rd.rollouts_of(toy.instance_id)) == 8


def _running(log: Path) -> list[Path]:
    """Start files of executions with no done file (yet)."""
    return [p for p in log.glob("*.start") if not p.with_suffix(".done").exists()]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def winner_reply(body):
    msg = {"role": "assistant", "content": "WINNER: 1"}
    return {"id": "j", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


async def test_cli_run_on_the_cluster_rollouts_there_judge_here_eval_on_the_docker_node(cluster, toy, tmp_path):
    saved = tmp_path / "saved.json"  # the agent's run, replayed on the workers
    run = Trajectory(id="s", task_id=toy.instance_id, outcome="Submitted", patch=FIX_PATCH)
    saved.write_text(run.model_dump_json())
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(toy.to_row()) + "\n")
    async with LoopbackServer(reply=winner_reply) as judge_server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tts.cli.main", "swe", "run", "--dataset", str(rows), "--run-dir",
            str(tmp_path / "run"), "--agent", "replay", "--replay", str(saved), "--n", "3", "--rounds", "1",
            "--summarizer", "rule", "--votes", "1", "--model", "openai/judge", "--api-base", judge_server.url,
            "--api-key", "sk-judge", "--grader", "local", "--eval-resource", "docker=1", "--executor", "ray",
            "--ray-address", cluster.address, "--quiet", cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    rd = RunDir(tmp_path / "run")
    trajs = [rd.load(p, Trajectory) for p in rd.rollouts_of(toy.instance_id)]
    assert len(trajs) == 3 and all(t.metadata["worker"]["pid"] != proc.pid for t in trajs)
    assert judge_server.stats["ok"] == 2  # RTV over 3 with V=1: the judge answered on the driver, here
    run_id = (tmp_path / "run").name
    assert f"resolved 1/1: {toy.instance_id}" in stdout.decode()
    assert json.loads((tmp_path / "run" / f"openai__judge.{run_id}.json").read_text())["resolved_instances"] == 1

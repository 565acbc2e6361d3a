"""The executor seam without a cluster: the local executor's bounds, flag parsing, a runner fit to
ship to a Ray worker (picklable, key read from the worker's environment), evaluation through an
executor, and the one-line errors when Ray is missing."""

import asyncio
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tts.errors import ConfigError
from tts.swe.eval_tasks import evaluate_on
from tts.swe.executor import ExecutorRunner, LocalExecutor, on_executor, parse_memory, parse_resources
from tts.swe.pipeline import AgenticPDR, run_instances, swe_rtv
from tts.swe.runners import MiniSweAgentRunner, ScriptedRunner
from tts.swe.summarize import RuleTrajectorySummary
from tts.swe.toy import FIX_PATCH, WRONG_PATCHES, ToyAgent, count_runs, make_toy_instance
from tts.testing import ScriptedBackend

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_instance(tmp_path_factory.mktemp("toy"))


def test_flag_values():
    assert parse_memory("4GiB") == 4 * 2**30 and parse_memory("512MB") == 512 * 10**6 and parse_memory("100") == 100
    assert parse_memory(None) is None
    assert parse_resources(["docker=1", "big=0.5", "ssd"]) == {"docker": 1.0, "big": 0.5, "ssd": 1.0}
    for bad in (["docker=0"], ["=1"], ["x=y"]):
        with pytest.raises(ConfigError, match="NAME=AMOUNT"):
            parse_resources(bad)
    with pytest.raises(ConfigError, match="4GiB"):
        parse_memory("lots")


async def test_local_executor_bounds_rollouts_and_is_the_default_path(toy, tmp_path):
    state = {"now": 0, "peak": 0}

    async def agent(inst, prior, rid):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1
        return FIX_PATCH

    ex = LocalExecutor(max_in_flight=2)
    runner = ScriptedRunner(agent)
    assert on_executor(runner, None) is runner
    wrapped = on_executor(runner, ex)
    assert isinstance(wrapped, ExecutorRunner)
    outs = await asyncio.gather(*(wrapped.run(toy, rollout_id=f"t/round0-{k}") for k in range(6)))
    assert state["peak"] == 2 and [o.patch for o in outs] == [FIX_PATCH] * 6


async def test_results_through_an_executor_runner_match_the_direct_path(toy, tmp_path):
    strat = AgenticPDR(rollouts=3, rounds=2, select_k=2, summarizer=RuleTrajectorySummary(), selector=swe_rtv(votes=1))
    direct = await run_instances(strat, [toy], ScriptedRunner(ToyAgent()), ScriptedBackend(["WINNER: 1"]),
                                 progress=False)
    wrapped = ExecutorRunner(ScriptedRunner(ToyAgent()), LocalExecutor(max_in_flight=1))
    via = await run_instances(strat, [toy], wrapped, ScriptedBackend(["WINNER: 1"]), progress=False)
    assert via[0].model_dump(exclude={"wall_s"}) == direct[0].model_dump(exclude={"wall_s"})


async def test_toy_agent_is_deterministic_and_counts_its_runs(toy, tmp_path):
    agent = ToyAgent(log_dir=tmp_path)
    assert await agent(toy, [], "toy__calc-1/round0-0") == FIX_PATCH
    assert await agent(toy, [], "toy__calc-1/round0-1") in WRONG_PATCHES.values()
    assert await agent(toy, [], "toy__calc-1/round1-2") == FIX_PATCH
    assert count_runs(tmp_path)["toy__calc-1_round0-0"] == {"start": 1, "done": 1}


async def test_evaluate_on_the_local_executor_merges_reports(toy, tmp_path):
    preds = {toy.instance_id: {"instance_id": toy.instance_id, "model_name_or_path": "m", "model_patch": FIX_PATCH}}
    seen = []
    summary = await evaluate_on(LocalExecutor(), [toy], preds, grader="local", run_id="r", out_dir=tmp_path,
                                on_done=seen.append)
    assert summary["resolved_ids"] == [toy.instance_id] and seen == [toy.instance_id]
    assert (tmp_path / "logs" / "run_evaluation" / "r" / "m" / toy.instance_id / "test_output.txt").is_file()
    assert json.loads((tmp_path / "m.r.json").read_text())["resolved_instances"] == 1


def test_mini_swe_agent_runner_ships_without_its_pool_and_reads_its_key_where_it_runs(monkeypatch):
    runner = MiniSweAgentRunner(model="openai/x", api_key_env="TTS_TEST_AGENT_KEY")
    runner._pool()  # a live thread pool cannot be pickled
    copy = pickle.loads(pickle.dumps(runner))
    assert copy._executor is None and copy.config == runner.config
    runner.close()
    assert runner._executor is None
    pytest.importorskip("minisweagent")
    from tts.swe.runners import import_minisweagent

    import_minisweagent()
    monkeypatch.setenv("TTS_TEST_AGENT_KEY", "sk-worker")
    _, model, _ = copy._configs(None)
    assert model["model_kwargs"]["api_key"] == "sk-worker"
    monkeypatch.delenv("TTS_TEST_AGENT_KEY")
    assert "api_key" not in copy._configs(None)[1]["model_kwargs"]


def test_missing_ray_is_one_line_exit_2(tmp_path):
    (tmp_path / "preds.json").write_text("{}")
    code = ("import sys; sys.modules['ray'] = None\n"
            "from tts.cli.main import main\n"
            f"sys.exit(main(['swe', 'eval', '--run-dir', {str(tmp_path)!r}, '--grader', 'local', "
            "'--executor', 'ray']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "pip install 'tts-scaling[ray]'" in out.stderr

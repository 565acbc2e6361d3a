"""`tts plan`: the pilot's measured costs projected onto the grid, checked against the server."""

from __future__ import annotations

import json

import pytest

from tts.backends.openai_http import OpenAIHTTPBackend
from tts.build import stack_wrappers
from tts.cli.main import main
from tts.experiments.plan import make_plan
from tts.records import Task
from tts.testing import LoopbackServer

TASKS = [Task(id=f"t{i}", prompt=f"What is {i} + {2 * i}?", answer=str(3 * i)) for i in range(10)]


def price(prompt, completion):
    return (prompt * 1.0 + completion * 2.0) / 1e6


async def test_plan_projects_measured_costs_and_runs_the_fitting_configs(tmp_path):
    async with LoopbackServer(latency=0.01) as server:
        backend = stack_wrappers(OpenAIHTTPBackend("loop", server.url), cache_dir=tmp_path / "c", retries=0)
        try:
            plan = await make_plan(TASKS, backend, max_cost=0.01, pilot=2, price=price)
        finally:
            await backend.aclose()
        served = dict(server.stats)
    sample = next(c for c in plan.costs if c.role == "sample")
    judge = next(c for c in plan.costs if c.role == "judge")
    assert sample.calls == 2 * 16 and judge.calls == 2 * 2 * 3
    rows = {(r.strategy, tuple(r.config.values())): r for r in plan.rows}
    sc16 = rows[("self-consistency", (16,))]
    assert sc16.calls_per_task == 16 and sc16.cost_usd == pytest.approx(16 * sample.cost_usd * len(TASKS))
    rtv = rows[("rtv", (16, 8))]
    assert rtv.calls_per_task == 16 + 8 * 15
    assert rtv.cost_usd == pytest.approx((16 * sample.cost_usd + 120 * judge.cost_usd) * len(TASKS))
    assert rtv.latency_s == pytest.approx(sample.latency_s + 4 * judge.latency_s)
    assert all(r.fits == (r.cost_usd <= 0.01) for r in plan.rows)
    assert any(r.fits for r in plan.rows) and not all(r.fits for r in plan.rows)
    assert all((r.pilot_accuracy is not None) == r.fits for r in plan.rows)
    assert rows[("self-consistency", (4,))].pilot_accuracy == 1.0  # the loopback server is always right
    # what the pilot paid is what the server served (the smaller N came from the cache)
    assert plan.pilot_paid.calls == served["ok"]
    assert plan.best is not None and plan.best.fits


async def test_plan_projects_pdr_and_sequential_refinement_rounds(tmp_path):
    async with LoopbackServer(latency=0.01) as server:
        backend = stack_wrappers(OpenAIHTTPBackend("loop", server.url), cache_dir=tmp_path / "c", retries=0)
        try:
            plan = await make_plan(TASKS, backend, max_cost=1.0, pilot=2, price=price,
                                   strategies=["pdr", "sequential-refinement"])
        finally:
            await backend.aclose()
        served = dict(server.stats)
    costs = {c.role: c for c in plan.costs}
    sample, ws, refine = costs["sample"], costs["workspace-draft"], costs["refine"]
    assert "judge" not in costs and ws.calls == 2 * 1 and refine.calls == 2 * 1  # pilot pdr [4,1], sr R=2
    assert ws.cost_usd > sample.cost_usd and refine.cost_usd > sample.cost_usd  # the workspace is in the prompt
    rows = {(r.strategy, tuple(r.config.values())): r for r in plan.rows}
    assert {k[0] for k in rows} == {"pdr", "sequential-refinement"}
    pdr = rows[("pdr", (8, 3))]  # [8, 8, 1]
    assert pdr.calls_per_task == 8 + 8 + 1
    assert pdr.cost_usd == pytest.approx((8 * sample.cost_usd + 9 * ws.cost_usd) * len(TASKS))
    assert pdr.latency_s == pytest.approx(sample.latency_s + 2 * ws.latency_s)
    sr = rows[("sequential-refinement", (4,))]
    assert sr.calls_per_task == 4 and sr.cost_usd == pytest.approx((sample.cost_usd + 3 * refine.cost_usd) * len(TASKS))
    assert sr.latency_s == pytest.approx(sample.latency_s + 3 * refine.latency_s)
    assert all(r.fits and r.pilot_accuracy is not None for r in plan.rows)
    assert plan.pilot_paid.calls == served["ok"]  # pdr's first round came from the pilot's samples


async def test_plan_cli_prints_the_table(tmp_path, capsys):
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(t.model_dump(exclude_none=True, exclude={"metadata"})) for t in TASKS))
    async with LoopbackServer() as server:
        import asyncio

        code = await asyncio.to_thread(main, [
            "plan", str(path), "--model", "loop", "--backend", "openai", "--api-base", server.url,
            "--max-cost", "0.005", "--max-latency", "5", "--price", "1,2", "--pilot", "1",
            "--strategies", "self-consistency", "--cache-dir", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0 and "projected cost" in out and "best on the pilot within budget" in out
    assert "the pilot paid 16 calls, 176 tokens, $0.0003" in out


def test_plan_cli_rejects_bad_input_in_one_line(tmp_path, capsys):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "What is 1 + 2?"}) + "\n")
    assert main(["plan", str(path), "--model", "loop", "--max-cost", "1", "--strategies", "beam"]) == 2
    assert "unknown beam" in capsys.readouterr().err
    assert main(["plan", str(path), "--model", "loop", "--max-cost", "1", "--price", "cheap"]) == 2
    assert main(["plan", str(path), "--model", "loop", "--max-cost", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--price wants two numbers" in err and "--max-cost must be positive" in err and "Traceback" not in err

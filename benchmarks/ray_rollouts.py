"""Rollouts on the local executor vs Ray with 1 and 2 local nodes: wall time against the ideal set
by slots, and the scheduling overhead per rollout.

    python benchmarks/ray_rollouts.py [--rollouts 200] [--delay 0.5] [--slots-per-node 4]

Every rollout is the toy instance's scripted agent (`ToyAgent`) sleeping `delay` seconds, run
through the pipeline's rollout step with a run dir (so each one is also written by the driver as
it lands). With S slots (rollouts in flight: the local executor's bound, or the nodes' CPUs at 1
CPU a rollout):

    ideal     = ceil(rollouts / S) * delay
    overhead  = (wall - ideal) * S / rollouts        slot-seconds lost per rollout

Each Ray configuration runs twice on one connection: "cold" includes starting the worker
processes, "warm" reuses them. The clusters are real (`ray start --head` + `ray start --address`
on loopback, tts.swe.ray_cluster) and are torn down at the end. Numbers on a shared machine are
noisy: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts.swe.executor import LocalExecutor, on_executor
from tts.swe.pipeline import AgenticPDR
from tts.swe.rundir import RunDir
from tts.swe.runners import ScriptedRunner
from tts.swe.toy import ToyAgent, make_toy_instance

REPO = Path(__file__).resolve().parents[1]


async def rollouts(executor, inst, n: int, delay: float, run_dir: Path, slots: int) -> float:
    """`tts swe rollout`'s path: the pipeline's rollout step, `--concurrency slots`."""
    strat = AgenticPDR(rollouts=n, rounds=1)
    runner = on_executor(ScriptedRunner(ToyAgent(delay_s=delay)), executor)
    rd = RunDir(run_dir)
    limiter = asyncio.Semaphore(slots)
    started = time.perf_counter()
    await asyncio.gather(*(strat.rollout(inst, runner, [], 0, k, rd=rd, limiter=limiter) for k in range(n)))
    wall = time.perf_counter() - started
    assert len(rd.rollouts_of(inst.instance_id)) == n
    return wall


def row(name: str, slots: int, wall: float, n: int, delay: float, extra: str = "") -> str:
    ideal = math.ceil(n / slots) * delay
    over = (wall - ideal) * slots / n
    return (f"| {name:<28} | {slots:>5} | {wall:>7.2f} | {ideal:>7.2f} | {wall / ideal:>6.2f} "
            f"| {over * 1000:>9.1f} | {extra}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--slots-per-node", type=int, default=4)
    args = ap.parse_args()
    n, delay, s = args.rollouts, args.delay, args.slots_per_node
    tmp = Path(tempfile.mkdtemp(prefix="tts-bench-ray-"))
    inst = make_toy_instance(tmp)
    print(f"{n} rollouts of {delay} s each; {s} slots per node\n")
    print("| executor                     | slots | wall s  | ideal s | ratio  | overhead ms/rollout | note")
    print("|------------------------------|-------|---------|---------|--------|-----------|------")
    for slots in (s, 2 * s):
        wall = await rollouts(LocalExecutor(max_in_flight=slots), inst, n, delay, tmp / f"local{slots}", slots)
        print(row("local (in-process)", slots, wall, n, delay), flush=True)

    from tts.swe.ray_cluster import LocalRayCluster
    from tts.swe.ray_executor import RayExecutor

    for nodes in (1, 2):
        spec = [{"num_cpus": s} for _ in range(nodes)]
        t0 = time.perf_counter()
        with LocalRayCluster(spec, pythonpath=str(REPO)) as cluster:
            up = time.perf_counter() - t0
            t1 = time.perf_counter()
            ex = await RayExecutor(cluster.address, max_in_flight=nodes * s).start()
            connect = time.perf_counter() - t1
            try:
                for phase in ("cold", "warm"):
                    wall = await rollouts(ex, inst, n, delay, tmp / f"ray{nodes}-{phase}", nodes * s)
                    spread = len({p["node_id"] for p in ex.placed[-n:]})
                    note = (f"cluster up {up:.1f} s, connect {connect:.1f} s; " if phase == "cold" else "") + \
                        f"ran on {spread} node(s)"
                    print(row(f"ray, {nodes} node(s), {phase}", nodes * s, wall, n, delay, note), flush=True)
            finally:
                await ex.aclose()


if __name__ == "__main__":
    asyncio.run(main())

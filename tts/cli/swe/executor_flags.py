"""`--executor local|ray` and the Ray flags of `tts swe rollout|pdr|run|eval`."""

from __future__ import annotations

import argparse
from typing import Any

AGENT_KEY_ENV = "TTS_AGENT_API_KEY"
"""Where `--api-key` reaches the Ray workers (through the runtime env, never a task argument)."""


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("executor (where rollouts and evaluations run)")
    g.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: this process; ray: one Ray task per rollout / per evaluated instance")
    g.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="the Ray cluster to join (default: start a local Ray instance)")
    g.add_argument("--ray-num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    g.add_argument("--rollout-cpus", type=float, default=1.0, help="CPUs each rollout task declares")
    g.add_argument("--rollout-memory", default=None, metavar="SIZE", help="memory each rollout declares, e.g. 4GiB")
    g.add_argument("--rollout-resource", action="append", default=[], metavar="NAME=AMOUNT",
                   help="custom resource each rollout declares (repeatable), e.g. docker=1")
    g.add_argument("--eval-resource", action="append", default=None, metavar="NAME=AMOUNT",
                   help="custom resource each evaluation task declares (default: docker=1 for --grader swebench)")
    g.add_argument("--max-retries", type=int, default=3,
                   help="retries of a rollout whose Ray worker or node died (never of one that completed)")


def uses_ray(args: argparse.Namespace) -> bool:
    return getattr(args, "executor", "local") == "ray"


async def make_executor(args: argparse.Namespace, runner: Any = None) -> Any:
    """The started executor for these flags; None for local (the pipeline's own path). With Ray,
    `runner`'s API key moves into the workers' runtime env and its native mini-swe-agent files stay
    off (they would land on the workers' disks, not in the run dir)."""
    if not uses_ray(args):
        return None
    from tts.errors import ConfigError
    from tts.swe.executor import parse_memory, parse_resources
    from tts.swe.ray_executor import RayExecutor

    if args.max_retries < 0:
        raise ConfigError(f"--max-retries cannot be negative, got {args.max_retries}")
    if args.rollout_cpus < 0:
        raise ConfigError(f"--rollout-cpus cannot be negative, got {args.rollout_cpus}")
    grader = getattr(args, "grader", None)
    eval_res = args.eval_resource if args.eval_resource is not None else (["docker=1"] if grader == "swebench" else [])
    ex = RayExecutor(args.ray_address, rollout_cpus=args.rollout_cpus, rollout_memory=parse_memory(args.rollout_memory),
                     rollout_resources=parse_resources(args.rollout_resource), call_resources=parse_resources(eval_res),
                     max_in_flight=getattr(args, "concurrency", 16),
                     max_calls_in_flight=getattr(args, "max_workers", None), max_retries=args.max_retries,
                     num_cpus=args.ray_num_cpus)
    config = getattr(runner, "config", None)
    if config is not None and hasattr(config, "api_key_env"):
        kwargs = dict(config.model_kwargs)
        key = kwargs.pop("api_key", None)
        update: dict[str, Any] = {"model_kwargs": kwargs, "native_dir": None}
        if key:
            ex.add_env(AGENT_KEY_ENV, key)
            update["api_key_env"] = AGENT_KEY_ENV
        runner.config = config.model_copy(update=update)
    return await ex.start()


async def eval_on_ray(args: argparse.Namespace, rd: Any, instances: Any) -> int:
    """`tts swe eval --executor ray`: one Ray task per instance, reports merged into the run dir.
    `instances(args, rd)` reads the rows (the CLI's own loader)."""
    from pathlib import Path

    from tts.errors import UsageError
    from tts.swe.eval_tasks import evaluate_on
    from tts.swe.grade import read_preds

    if args.modal:
        raise UsageError("--modal and --executor ray do not go together: Modal runs the harness itself")
    preds_path = Path(args.preds) if args.preds else rd.preds
    if not preds_path.is_file():
        raise UsageError(f"no predictions at {preds_path}; run 'tts swe preds' first")
    executor = await make_executor(args)
    try:
        rows = instances(args, rd)
    except BaseException:
        await executor.aclose()
        raise
    run_id = args.run_id or rd.root.resolve().name
    graded: list[str] = []

    def on_done(iid: str) -> None:
        graded.append(iid)
        if not args.quiet:
            print(f"graded {iid} ({len(graded)}/{len(rows)})", flush=True)

    try:
        summary = await evaluate_on(executor, rows, read_preds(preds_path), grader=args.grader, run_id=run_id,
                                    out_dir=rd.root, on_done=on_done)
    finally:
        await executor.aclose()
    print(f"resolved {summary['resolved_instances']}/{summary['total_instances']}: "
          f"{', '.join(summary['resolved_ids']) or '-'} (reports under {rd.root / 'logs' / 'run_evaluation' / run_id})")
    return 0

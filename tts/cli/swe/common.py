"""What the `tts swe` steps share: the run dir and its instances, the agent runner, the judge and
summarizer backends, the strategy, and the guard that turns a refused request into one line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tts.cli.swe.executor_flags import uses_ray
from tts.errors import ConfigError, UsageError


def guarded(handler: Any) -> Any:
    """The step with warnings (logger `tts.swe`) as one line each, and a request the model's provider
    refused as a one-line usage error instead of a traceback."""
    import asyncio
    import functools
    import logging

    def warn_lines() -> None:
        from tts.cli.logs import log_to_stderr

        log_to_stderr(("tts.swe",), logging.Formatter("tts swe: warning: %(message)s"))

    def refused(exc: Exception) -> UsageError:
        return UsageError(f"the model refused the request ({exc}); check --model, --api-base and --api-key")

    if asyncio.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def run_async(args: argparse.Namespace) -> int:
            from tts.errors import PermanentError

            warn_lines()
            try:
                return await handler(args)
            except PermanentError as exc:
                raise refused(exc) from None
        return run_async

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from tts.errors import PermanentError

        warn_lines()
        try:
            return handler(args)
        except PermanentError as exc:
            raise refused(exc) from None
    return run


def open_rundir(args: argparse.Namespace) -> Any:
    from tts.swe.rundir import RunDir

    rd = RunDir(args.run_dir)
    rd.root.mkdir(parents=True, exist_ok=True)
    return rd


def load_rows(args: argparse.Namespace, rd: Any) -> list[Any]:
    from tts.swe.instance import load_instances

    if getattr(args, "dataset", None):
        rows = load_instances(args.dataset, args.split, args.instance_ids)
        if not rd.instances.is_file():
            rd.save_instances(rows)
        return rows
    if rd.instances.is_file():
        rows = rd.load_instances()
        if args.instance_ids:
            rows = [r for r in rows if r.instance_id in set(args.instance_ids)]
        return rows
    raise UsageError(f"{rd.root} has no instances.jsonl; pass --dataset")


def require_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def make_runner(args: argparse.Namespace) -> Any:
    if args.env == "docker" and not uses_ray(args):  # with Ray, Docker is needed on the workers
        from tts.swe.docker_probe import require_docker

        require_docker("--env docker", "--env local (rows with repo_path)")
    if args.agent == "replay":
        from tts.swe.runners import ReplayRunner

        if not args.replay:
            raise ConfigError("--agent replay needs --replay PATH... (saved trajectories or batch dirs)")
        return ReplayRunner.from_paths(args.replay)
    if not args.model:
        raise ConfigError("--model is required for the mini-swe-agent runner (a litellm model name, or 'local')")
    from tts.swe.runners import MiniSweAgentConfig, MiniSweAgentRunner

    kwargs: dict[str, Any] = {"drop_params": True}
    if args.model == "local":
        if args.api_base:
            raise ConfigError("--model local is the embedded model on its own server: drop --api-base")
        from tts.local import require_local_extra

        require_local_extra()
    elif args.api_base:
        kwargs["api_base"] = args.api_base
    if args.api_key:
        kwargs["api_key"] = args.api_key
    if args.agent_temperature is not None:
        kwargs["temperature"] = args.agent_temperature
    return MiniSweAgentRunner(MiniSweAgentConfig(
        config_spec=args.mswea_config, model=args.model, model_class=args.model_class, model_kwargs=kwargs,
        env=args.env, step_limit=args.step_limit, cost_limit=args.cost_limit, max_threads=max(1, args.concurrency),
        native_dir=str(Path(args.run_dir) / "mini-swe-agent")))


def make_swe_backends(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from tts.build import make_backend

    if not args.model:
        raise ConfigError("--model is required: it answers the judge and summarizer calls")
    common: dict[str, Any] = dict(backend=args.backend, api_base=args.api_base, api_key=args.api_key,
                                  cache_dir=args.cache_dir)
    if "local" in (args.model, getattr(args, "judge_model", None)):
        # The embedded server answers one call at a time, slowly on a busy CPU: a call cut off at 120 s would be
        # sent again while the server still works on the first (a crashed server is detected on its own).
        common["timeout"] = 900.0
    backend = make_backend(args.model, **common)
    extra = {}
    if getattr(args, "judge_model", None):
        extra["judge"] = make_backend(args.judge_model, **common)
    return backend, extra


def make_strategy(args: argparse.Namespace, *, rounds: int = 1, n: int = 1, select_k: int = 4) -> Any:
    from tts.swe.pipeline import AgenticPDR, swe_rtv
    from tts.swe.summarize import LLMTrajectorySummary, RuleTrajectorySummary

    require_positive(args, "group_size", "votes", "select_k")
    group_size, votes = getattr(args, "group_size", 2), getattr(args, "votes", 8)
    if group_size < 2:
        raise ConfigError(f"--group-size must be at least 2, got {group_size}")
    context = getattr(args, "context_tokens", None)
    if context is not None and context < 256:
        raise ConfigError(f"--context-tokens must be at least 256, got {context}")
    summarizer = LLMTrajectorySummary(context_tokens=context) if getattr(args, "summarizer", "rule") == "llm" \
        else RuleTrajectorySummary()
    summary_tokens = 1500
    if (getattr(args, "judge_model", None) or getattr(args, "model", None)) == "local":
        from tts.local import N_CTX

        # G summaries, the task and the judge's template in SmolLM2's window (3 chars a token, 4 in the bound)
        summary_tokens = max(100, ((N_CTX - 300) * 3 - 2300) // (4 * group_size))
    return AgenticPDR(rollouts=n, rounds=rounds, select_k=select_k, summarizer=summarizer,
                      selector=swe_rtv(group_size, votes, summary_tokens))


def instance_ctx(args: argparse.Namespace, backend: Any, extra: dict[str, Any], iid: str) -> Any:
    from tts.context import RunContext, SamplingDefaults

    return RunContext(backend, backends=extra, seed=args.seed, path=f"swe/{iid}",
                      defaults=SamplingDefaults(temperature=0.7, max_tokens=2048))


async def close_all(*backends: Any) -> None:
    for b in backends:
        close = getattr(b, "aclose", None)
        if close is not None:
            await close()


def saved_rounds(rd: Any, iid: str) -> dict[int, list[int]]:
    by_round: dict[int, list[int]] = {}
    for p in rd.rollouts_of(iid):
        r, k = p.stem.removeprefix("round").split("-")
        by_round.setdefault(int(r), []).append(int(k))
    return by_round

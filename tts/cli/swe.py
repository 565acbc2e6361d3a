"""`tts swe ...`: agentic test-time scaling on SWE-bench-shaped instances, step by step or at once.

    tts swe rollout   --dataset D --run-dir R --n 16          N rollouts per instance (round 0, or --round r)
    tts swe summarize --run-dir R                             summarize every saved rollout without a summary
    tts swe select    --run-dir R [--round r] [--select-k K]  RTV over a round's summaries
    tts swe pdr       --dataset D --run-dir R --n 16 --rounds 2 --select-k 4
    tts swe preds     --run-dir R                             preds.json (swebench's format)
    tts swe eval      --run-dir R --grader swebench|local     the swebench harness, or the local grader
    tts swe run       ...                                     pdr + preds + eval
    tts swe import    PATH... --run-dir R                     saved runs (mini-swe-agent, Terminus, ATIF) -> rollouts

Every step reads and writes files in the run dir; a rerun skips what exists.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tts.cli.swe_executor import add_executor_flags, make_executor, uses_ray
from tts.errors import ConfigError, UsageError

STEPS = ("rollout", "summarize", "select", "pdr", "preds", "eval", "run", "import")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("swe", help="agentic test-time scaling on SWE-bench-shaped instances",
                       description=__doc__.splitlines()[0])
    steps = p.add_subparsers(dest="step", metavar="STEP", parser_class=type(p))
    for name in STEPS:
        sp = steps.add_parser(name, help=_HELP[name], description=_HELP[name])
        sp.add_argument("--run-dir", required=True, help="the run directory (created if absent)")
        if name in ("rollout", "summarize", "select", "pdr", "run", "eval", "import"):
            _data_flags(sp)
        if name in ("rollout", "pdr", "run"):
            _agent_flags(sp)
        if name in ("summarize", "select", "pdr", "run"):
            _judge_flags(sp, name)
        if name in ("preds", "run", "eval", "import"):
            sp.add_argument("--model-name", default=None, help="model_name_or_path in preds.json (default: --model)")
        if name in ("eval", "run"):
            _eval_flags(sp)
        if name in ("rollout", "pdr", "run", "eval"):
            add_executor_flags(sp)
        if name == "import":
            sp.add_argument("paths", nargs="+", metavar="PATH",
                            help="mini-swe-agent batch output dirs, or single saved runs (mini-swe-agent .traj.json, "
                                 "Terminus-1 trial dirs, ATIF .json)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        sp.set_defaults(handler=_guarded(_HANDLERS[name]))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


_HELP = {
    "rollout": "run N agent rollouts per instance",
    "summarize": "summarize saved rollouts",
    "select": "RTV over a round's rollout summaries",
    "pdr": "agentic PDR (rounds of rollouts, RTV select-K as context, final RTV); --rounds 1 is RTV over rollouts",
    "preds": "write preds.json from the run dir's selections",
    "eval": "evaluate preds.json: the swebench harness (Docker/Modal) or the local grader",
    "run": "pdr, preds and eval in one go",
    "import": "import saved agent runs (mini-swe-agent batch output, trajectories) as round-0 rollouts",
}


def _data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None,
                   help="a local .jsonl/.json of SWE-bench-shaped rows, or a hub name (SWE-bench/SWE-bench_Verified); "
                   "default: the run dir's instances.jsonl")
    g.add_argument("--split", default="test")
    g.add_argument("--instance-ids", nargs="+", default=None, metavar="ID", help="only these instances")


def _agent_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agent")
    g.add_argument("--model", help="the agent's litellm model (also judge and summarizer unless set apart)")
    g.add_argument("--api-base", help="endpoint URL, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--api-key", help="API key (default: the provider's usual environment variable)")
    g.add_argument("--agent", choices=["mini-swe-agent", "replay"], default="mini-swe-agent")
    g.add_argument("--replay", nargs="+", default=[], metavar="PATH",
                   help="saved trajectories or batch dirs for --agent replay")
    g.add_argument("--env", choices=["local", "docker"], default="local",
                   help="local: a fresh clone per rollout (rows need repo_path); docker: SWE-bench images")
    g.add_argument("--model-class", default="litellm", help="litellm (tool calls) or litellm_textbased")
    g.add_argument("--mswea-config", default="swebench.yaml", help="mini-swe-agent config (name or YAML path)")
    g.add_argument("--step-limit", type=int, default=None)
    g.add_argument("--cost-limit", type=float, default=None)
    g.add_argument("--agent-temperature", type=float, default=None)
    g.add_argument("--n", type=int, default=16, help="rollouts per instance per round (N)")
    g.add_argument("--round", type=int, default=0, help="(rollout) which round; r>0 uses round r-1's selection")
    g.add_argument("--concurrency", type=int, default=16, help="rollouts in flight across all instances")


def _judge_flags(p: argparse.ArgumentParser, step: str) -> None:
    g = p.add_argument_group("summaries" if step == "summarize" else "judge and summaries")
    if step in ("summarize", "select"):
        g.add_argument("--model", help=f"the {'summarizer' if step == 'summarize' else 'judge'} model "
                                       "(a litellm model string, or 'local' for the embedded model)")
        g.add_argument("--api-base")
        g.add_argument("--api-key")
    if step == "select":
        g.add_argument("--round", type=int, default=None, help="which round (default: the last saved)")
    if step != "summarize":
        g.add_argument("--judge-model", help="a separate judge model (default: --model)")
    g.add_argument("--backend", choices=["litellm", "openai"], default="litellm")
    if step != "select":
        g.add_argument("--summarizer", choices=["llm", "rule"], default="llm",
                       help="llm: a model call per rollout (the rule summary when the model fails); "
                            "rule: no model (commands, exit codes, tests, errors, patch)")
        g.add_argument("--context-tokens", type=int, default=None,
                       help="the summarizer model's context window (default: asked of the server or litellm); "
                            "the trajectory shown is cut to fit")
    if step != "summarize":
        g.add_argument("--group-size", type=int, default=2, help="RTV group size G")
        g.add_argument("--votes", type=int, default=8, help="RTV votes per group V")
        g.add_argument("--select-k", type=int, default=None, help="K summaries carried as context (pdr: 4; select: 1)")
    if step in ("pdr", "run"):
        g.add_argument("--rounds", type=int, default=2, help="T rounds (1: RTV over N rollouts)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--cache-dir", default=None, help="judge/summary call cache (default: none)")


def _eval_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--grader", choices=["swebench", "local"], default="swebench",
                   help="swebench: the official harness (needs Docker or --modal); local: rows' test_cmd in a clone")
    g.add_argument("--run-id", default=None, help="evaluation run id (default: the run dir's name)")
    g.add_argument("--max-workers", type=int, default=4)
    g.add_argument("--modal", action="store_true", help="run the swebench harness on Modal")
    g.add_argument("--preds", default=None, help="predictions file (default: <run-dir>/preds.json)")


# -- building blocks ----------------------------------------------------------------------------------
def _guarded(handler: Any) -> Any:
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



def _rundir(args: argparse.Namespace) -> Any:
    from tts.swe.rundir import RunDir

    rd = RunDir(args.run_dir)
    rd.root.mkdir(parents=True, exist_ok=True)
    return rd


def _instances(args: argparse.Namespace, rd: Any) -> list[Any]:
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


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _runner(args: argparse.Namespace) -> Any:
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


def _backends(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
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


def _strategy(args: argparse.Namespace, *, rounds: int = 1, n: int = 1, select_k: int = 4) -> Any:
    from tts.swe.pipeline import AgenticPDR, swe_rtv
    from tts.swe.summarize import LLMTrajectorySummary, RuleTrajectorySummary

    _positive(args, "group_size", "votes", "select_k")
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


def _ctx(args: argparse.Namespace, backend: Any, extra: dict[str, Any], iid: str) -> Any:
    from tts.context import RunContext, SamplingDefaults

    return RunContext(backend, backends=extra, seed=args.seed, path=f"swe/{iid}",
                      defaults=SamplingDefaults(temperature=0.7, max_tokens=2048))


async def _close(*backends: Any) -> None:
    for b in backends:
        close = getattr(b, "aclose", None)
        if close is not None:
            await close()


def _report(results: list[Any], started: float) -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="tts swe")
    for col in ("instance", "chosen", "patch lines", "rollouts", "failed", "agent $", "summaries", "judge calls",
                "tokens"):
        t.add_column(col)
    t.add_column("errors", no_wrap=True, overflow="ellipsis", max_width=90)
    lines = []
    for r in results:
        errs = error_lines(r)
        t.add_row(r.instance_id, r.chosen_id or "-", str(len((r.patch or "").splitlines())), str(r.rollouts),
                  str(r.failed_rollouts), f"{r.agent_cost_usd:.4f}", str(r.summary_calls), str(r.judge_calls),
                  str(r.usage.total_tokens), "\n".join(errs))
        lines.extend(f"{r.instance_id}: {e}" for e in errs)
    console = Console(stderr=True, width=max(Console(stderr=True).width, 160))
    console.print(t)
    for line in lines:  # in full, one per distinct error, whatever the terminal's width
        print(f"error: {line}", file=sys.stderr)
    console.print(f"wall {time.perf_counter() - started:.1f} s")
    return 1 if any(r.error for r in results) else 0


def error_lines(res: Any) -> list[str]:
    """One line per distinct error of an instance: its own, then each rollout error with its count."""
    out = [res.error] if res.error and res.error not in res.rollout_errors else []
    out.extend(f"{n}x {err}" if n > 1 else err for err, n in res.rollout_errors.items())
    return out


# -- handlers --------------------------------------------------------------------------------------------
async def _rollout(args: argparse.Namespace) -> int:
    import asyncio

    from tts.swe.executor import on_executor
    from tts.swe.pipeline import AgenticPDR, _progress

    _positive(args, "n", "concurrency")
    rd = _rundir(args)
    rows = _instances(args, rd)
    runner = _runner(args)
    executor = await make_executor(args, runner)
    runner = on_executor(runner, executor)
    limiter = asyncio.Semaphore(args.concurrency)
    strat = AgenticPDR(rollouts=args.n, rounds=1)
    with _progress(len(rows), len(rows) * args.n, disable=args.quiet) as on_event:
        async def one(inst: Any) -> None:
            prior = strat.saved_prior(rd, inst.instance_id, args.round) if args.round > 0 else []
            if args.round > 0 and not prior:
                raise UsageError(f"round {args.round} needs round {args.round - 1}'s selection for "
                                 f"{inst.instance_id}; run 'tts swe select --round {args.round - 1} --select-k K'")
            await asyncio.gather(*(strat.rollout(inst, runner, prior, args.round, k, rd=rd, limiter=limiter,
                                                 on_event=on_event) for k in range(args.n)))
            on_event("instance", inst.instance_id)

        try:
            await asyncio.gather(*(one(i) for i in rows))
        finally:
            await _close(runner, executor)
    print(f"rollouts in {rd.root / 'rollouts'}")
    return 0


def _saved_round(rd: Any, iid: str) -> dict[int, list[int]]:
    by_round: dict[int, list[int]] = {}
    for p in rd.rollouts_of(iid):
        r, k = p.stem.removeprefix("round").split("-")
        by_round.setdefault(int(r), []).append(int(k))
    return by_round


async def _summarize(args: argparse.Namespace) -> int:
    import asyncio

    from tts.records import Trajectory

    rd = _rundir(args)
    rows = _instances(args, rd)
    strat = _strategy(args)
    backend, extra = (None, {}) if args.summarizer == "rule" else _backends(args)
    if backend is None:
        from tts.testing import ScriptedBackend

        backend = ScriptedBackend(["(no model: rule summarizer)"])  # never called
    made = 0
    try:
        async def one(inst: Any) -> int:
            ctx = _ctx(args, backend, extra, inst.instance_id)
            n = 0
            for r, ks in _saved_round(rd, inst.instance_id).items():
                for k in ks:
                    if rd.summary(inst.instance_id, r, k).is_file():
                        continue
                    traj = rd.load(rd.rollout(inst.instance_id, r, k), Trajectory)
                    await strat.summary(inst.as_task(), traj, r, k, ctx, rd=rd)
                    n += 1
            return n

        made = sum(await asyncio.gather(*(one(i) for i in rows)))
    finally:
        await _close(backend, *extra.values())
    print(f"{made} summaries written to {rd.root / 'summaries'}")
    return 0


async def _select(args: argparse.Namespace) -> int:
    import asyncio

    from tts.records import Trajectory, TrajectorySummary
    from tts.swe.pipeline import SWEResult, candidate_of, usable

    rd = _rundir(args)
    rows = _instances(args, rd)
    k = args.select_k or 1
    strat = _strategy(args, select_k=k)
    backend, extra = _backends(args)
    try:
        async def one(inst: Any) -> SWEResult:
            iid = inst.instance_id
            saved = _saved_round(rd, iid)
            if not saved:
                raise UsageError(f"no rollouts saved for {iid}; run 'tts swe rollout' first")
            r = max(saved) if args.round is None else args.round
            cands = []
            for j in sorted(saved.get(r, [])):
                s = rd.load(rd.summary(iid, r, j), TrajectorySummary)
                if s is None:
                    raise UsageError(f"rollout {iid} round {r} #{j} has no summary; run 'tts swe summarize' first")
                cands.append(candidate_of(rd.load(rd.rollout(iid, r, j), Trajectory), s, r))
            ctx = _ctx(args, backend, extra, iid)
            errors: dict[str, int] = {}
            for c in cands:
                if c.metadata.get("error"):
                    errors[c.metadata["error"]] = errors.get(c.metadata["error"], 0) + 1
            pool = usable(cands)  # no judge call on rollouts that ended in an error
            picked, calls = await strat._select(inst.as_task(), pool, ctx.child(f"round{r}"), k, rd, iid, r) \
                if pool else ([], 0)
            res = SWEResult(instance_id=iid, patch=picked[0].text or None if picked else None,
                            chosen_id=picked[0].id if picked else None, judge_calls=calls, usage=ctx.usage,
                            rollouts=len(cands), rollout_errors=errors, failed_rollouts=sum(errors.values()),
                            error=None if pool else f"all {len(cands)} rollouts of round {r} failed")
            if k == 1:
                rd.save(rd.result(iid), res)
            return res

        results = await asyncio.gather(*(one(i) for i in rows))
    finally:
        await _close(backend, *extra.values())
    for res in results:
        print(f"{res.instance_id}: {res.chosen_id or '-'} ({res.judge_calls} judge calls, "
              f"{res.rollouts - res.failed_rollouts} of {res.rollouts} rollouts usable)")
        for line in error_lines(res):
            print(f"  error: {line}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


async def _pdr(args: argparse.Namespace) -> int:
    from tts.swe.pipeline import run_instances

    _positive(args, "n", "rounds", "concurrency")
    rd = _rundir(args)
    rows = _instances(args, rd)
    runner = _runner(args)
    strat = _strategy(args, rounds=args.rounds, n=args.n, select_k=args.select_k or 4)
    executor = await make_executor(args, runner)
    backend, extra = _backends(args)
    started = time.perf_counter()
    try:
        results = await run_instances(strat, rows, runner, backend, backends=extra, rundir=rd,
                                      max_rollouts_in_flight=args.concurrency, seed=args.seed, progress=not args.quiet,
                                      executor=executor)
    finally:
        await _close(backend, *extra.values(), runner, executor)
    return _report(results, started)


def _preds(args: argparse.Namespace) -> int:
    from tts.records import Trajectory
    from tts.swe.grade import write_preds
    from tts.swe.pipeline import SWEResult

    rd = _rundir(args)
    patches: dict[str, str | None] = {}
    for p in sorted((rd.root / "results").glob("*.json")):
        res = rd.load(p, SWEResult)
        patches[res.instance_id] = res.patch
    # Instances with one rollout and no selection (e.g. imported batch output): that rollout.
    unselected = []
    for d in sorted((rd.root / "rollouts").glob("*")):
        files = rd.rollouts_of(d.name)
        t = Trajectory.model_validate_json(files[0].read_text()) if files else None
        iid = (t.task_id if t else None) or d.name
        if len(files) == 1 and t is not None:
            patches.setdefault(iid, t.patch)
        elif len(files) > 1 and iid not in patches:
            unselected.append(f"{iid} ({len(files)} rollouts)")
    if unselected:
        print(f"not predicted, no selection yet: {', '.join(unselected)}; run 'tts swe summarize' and "
              f"'tts swe select' first", file=sys.stderr)
    if not patches:
        raise UsageError(f"nothing to predict in {rd.root}: run 'tts swe select' or 'tts swe pdr' first")
    name = args.model_name or getattr(args, "model", None) or "tts"
    path = write_preds(patches, rd.preds, name)
    print(f"{len(patches)} predictions written to {path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from tts.swe.grade import grade_local_many, read_preds, run_swebench_harness

    rd = _rundir(args)
    preds_path = Path(args.preds) if args.preds else rd.preds
    run_id = args.run_id or rd.root.resolve().name
    if args.grader == "swebench":
        from tts.swe.docker_probe import require_docker

        if not args.modal:
            require_docker("the swebench harness (--grader swebench)", "--grader local (rows with repo_path and "
                           "test_cmd) or --modal")
        if not preds_path.is_file():
            raise UsageError(f"no predictions at {preds_path}; run 'tts swe preds' first")
        dataset = args.dataset or str(rd.instances)
        if Path(dataset).exists():  # the harness runs inside the run dir
            dataset = str(Path(dataset).resolve())
        return run_swebench_harness(dataset, preds_path, run_id=run_id, split=args.split,
                                    max_workers=args.max_workers, modal=args.modal, cwd=rd.root,
                                    instance_ids=args.instance_ids or ())
    if not preds_path.is_file():
        raise UsageError(f"no predictions at {preds_path}; run 'tts swe preds' first")
    rows = _instances(args, rd)
    summary = grade_local_many(rows, read_preds(preds_path), run_id=run_id, out_dir=rd.root,
                               max_workers=args.max_workers)
    print(f"resolved {summary['resolved_instances']}/{summary['total_instances']}: "
          f"{', '.join(summary['resolved_ids']) or '-'} (reports under {rd.root / 'logs' / 'run_evaluation' / run_id})")
    return 0


async def _eval_any(args: argparse.Namespace) -> int:
    if uses_ray(args):
        from tts.cli.swe_executor import eval_on_ray

        return await eval_on_ray(args, _rundir(args), _instances)
    return _eval(args)


async def _run(args: argparse.Namespace) -> int:
    if args.grader == "swebench" and not args.modal and not uses_ray(args):
        from tts.swe.docker_probe import require_docker

        require_docker("the swebench harness (--grader swebench)", "--grader local (rows with repo_path and "
                       "test_cmd) or --modal")
    code = await _pdr(args)
    _preds(args)
    return await _eval_any(args) or code


def _import(args: argparse.Namespace) -> int:
    from tts.swe.importing import import_runs
    from tts.swe.readers import read_runs

    rd = _rundir(args)
    trajs = [t for p in args.paths for t in read_runs(p)]  # every file read before anything is written
    report = import_runs(rd, trajs)
    if not report.added and not report.already:
        raise UsageError(f"nothing to import: {'; '.join(report.skipped) or 'no runs found'}; expected saved runs "
                         f"with messages or a patch")
    for w in report.warnings:
        print(f"warning: {w}{' (skipped)' if w in report.skipped else ''}", file=sys.stderr)
    if args.dataset and not rd.instances.is_file():
        _instances(args, rd)
    elif not args.dataset:  # the tasks as the runs state them, for summaries and the judge
        from tts.swe.importing import instances_of

        rows = instances_of(trajs, rd.load_instances() if rd.instances.is_file() else [])
        if rows:
            rd.save_instances(rows)
    print(report.line(str(rd.root / "rollouts")))
    if args.model_name:
        _preds(args)
    return 0


_HANDLERS = {"rollout": _rollout, "summarize": _summarize, "select": _select, "pdr": _pdr, "preds": _preds,
             "eval": _eval_any, "run": _run, "import": _import}

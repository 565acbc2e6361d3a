"""`tts run TASKS.jsonl --model MODEL --strategy ...`: the main job from the command line.

All tasks are in flight together; the backend's throttle (`--concurrency`, `--rpm`, `--tpm`)
bounds the calls. One JSON line per task goes to `--out` as soon as the task finishes, and a
summary table is printed at the end. With the cache on (the default), a rerun after a crash
re-sends no call that had completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tts.cli.strategy_flags import add_strategy_flags, build_strategy
from tts.cli.view import add_trace_content_flag, open_trace
from tts.errors import ConfigError
from tts.records import RunResult
from tts.redact import redact


def default_cache_dir() -> str:
    base = os.environ.get("TTS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tts")
    return base


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a strategy over a JSONL task file",
                       description=__doc__.splitlines()[0])
    p.add_argument("tasks", help="JSONL file: one {\"id\", \"prompt\" | \"messages\", \"answer\"?} per line")
    add_backend_flags(p)
    c = p.add_argument_group("output")
    c.add_argument("--out", default="results.jsonl", help="one JSON line per task")
    c.add_argument("--trace", help="write every call (strategy path, role, tokens, latency, cached, what was said) "
                   "to this JSONL; `tts view FILE` opens it in a browser")
    add_trace_content_flag(c)
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_strategy_flags(p)
    p.set_defaults(handler=_handle)


def add_backend_flags(p: argparse.ArgumentParser, *, models: bool = False) -> None:
    """The flags of `tts run` that are not strategy or output flags: model and endpoint, sampling,
    judge endpoint, limits and cache (shared with `tts serve` and `tts compare`; `models=True` lets
    --model repeat)."""
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, action="append" if models else "store",
                   help="litellm model string, a served model name, or 'local' (the embedded SmolLM2-135M, "
                   "started on demand)" + ("; repeat it to compare models" if models else ""))
    g.add_argument("--api-base", help="endpoint URL, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--api-key", help="API key (default: the provider's usual environment variable)")
    g.add_argument("--backend", choices=["litellm", "openai"], default="litellm",
                   help="litellm (any provider) or openai (lean OpenAI-compatible client for self-hosted servers)")
    g.add_argument("--temperature", type=float, default=0.7, help="sampling temperature, 0 to 2")
    g.add_argument("--max-tokens", type=int, default=512, help="max tokens per completion")
    g.add_argument("--seed", type=int, default=None, help="base seed: sample i gets seed+i; also seeds tie-breaking")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per call before it is retried")
    g.add_argument("--n-per-request", type=int, default=None, metavar="K",
                   help="samples of one prompt per request (n=K where the backend supports it; cached per sample) "
                        "(default: 8 for --model local, whose samples of one prompt share its prefill; else 1)")
    g.add_argument("--retries", type=int, default=8, help="retries per call after a transient failure (0: none)")
    g.add_argument("--task-timeout", type=float, default=None,
                   help="seconds per task; a task past it stops with status timeout and the answer it has")
    j = p.add_argument_group("judge")
    j.add_argument("--judge-model", help="model for judge/critique calls (default: the main model)")
    j.add_argument("--judge-api-base", help="endpoint of the judge model (default: --api-base)")
    j.add_argument("--judge-backend", choices=["litellm", "openai"], help="backend of the judge model "
                   "(default: --backend)")
    j.add_argument("--judge-api-key", help="API key of the judge endpoint (default: --api-key)")
    lim = p.add_argument_group("limits")
    lim.add_argument("--concurrency", type=int, default=64, help="max calls in flight")
    lim.add_argument("--rpm", type=float, help="max requests per minute")
    lim.add_argument("--tpm", type=float, help="max tokens per minute")
    lim.add_argument("--max-calls", type=int, help="hard cap on model calls for the whole run")
    lim.add_argument("--max-tokens-total", type=int, help="hard cap on tokens for the whole run")
    lim.add_argument("--max-cost", type=float, help="hard cap in USD for the whole run")
    c = p.add_argument_group("cache")
    cache = c.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", default=None, help=f"call cache directory (default: {default_cache_dir()})")
    cache.add_argument("--no-cache", action="store_true", help="send every call, store nothing")


def result_line(res: RunResult) -> dict[str, Any]:
    from tts.experiments.stats import stages

    best = res.best
    return {
        "id": res.task_id,
        "strategy": res.strategy,
        "answer": res.answer,
        "correct": res.correct,
        "status": res.status,
        "error": res.error,
        "text": best.text if best is not None else None,
        "candidates": len(res.candidates),
        "usage": res.usage.model_dump(),
        "paid": res.paid.model_dump(),
        "wall_s": round(res.wall_s, 3),
        "stages": stages(res.trace),  # sequential stages of calls: wall time without the queueing
        "metadata": res.metadata,
    }


def _check_limits(args: argparse.Namespace) -> None:
    for name in ("concurrency", "max_calls", "max_tokens_total", "max_tokens", "n_per_request"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.retries < 0:
        raise ConfigError(f"--retries must be 0 (no retries) or more, got {args.retries}")
    for name in ("rpm", "tpm", "max_cost", "timeout", "task_timeout"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        raise ConfigError(f"--temperature must be between 0 and 2, got {args.temperature:g}")


def _on_interrupt(cancel: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
    if cancel.is_set():  # the second Ctrl-C: stop now
        loop.remove_signal_handler(signal.SIGINT)
        raise KeyboardInterrupt
    cancel.set()


def _writable_file(flag: str, path: str) -> Path:
    """`path` can be written (its folder is made): else a one-line ConfigError naming the flag."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); "
                          f"give a path in a writable folder") from None
    return p


def _writable_dir(flag: str, path: str) -> str:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe = Path(path) / f".tts-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); "
                          f"give a writable folder or --no-cache") from None
    return path


async def check_reachable(api_base: str, timeout: float = 5.0) -> None:
    """A one-line ConfigError when nothing listens at `api_base` (before any task is started, so a
    typo in the URL is not reported as 64 failed tasks after minutes of retries)."""
    from urllib.parse import urlsplit

    parts = urlsplit(api_base if "//" in api_base else f"http://{api_base}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--api-base {api_base!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError(f"cannot connect to {api_base}: {reason}; is the server running? (--api-base)") from None
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


def make_backends(args: argparse.Namespace, model: str | None = None,
                  share_budget_with: Any = None) -> tuple[Any, dict[str, Any]]:
    """The backend stack the flags describe (for `model`, default --model) and the judge's, if any."""
    from tts.build import make_backend

    common = dict(cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
                  retries=args.retries, timeout=args.timeout, concurrency=args.concurrency, rpm=args.rpm,
                  tpm=args.tpm, max_calls=args.max_calls, max_tokens_total=args.max_tokens_total,
                  max_cost=args.max_cost)
    backend = make_backend(model or args.model, backend=args.backend, api_base=args.api_base, api_key=args.api_key,
                           share_budget_with=share_budget_with, **common)
    backends = {}
    judge_endpoint = args.judge_api_base or args.judge_backend or args.judge_api_key
    if args.judge_model or judge_endpoint:
        # same caps, one budget: the judge's calls count against --max-calls/--max-cost too
        backends["judge"] = make_backend(args.judge_model or model or args.model,
                                         backend=args.judge_backend or args.backend,
                                         api_base=args.judge_api_base or args.api_base,
                                         api_key=args.judge_api_key or args.api_key, share_budget_with=backend,
                                         **common)
    return backend, backends


def sampling_defaults(args: argparse.Namespace, strategies: list[Any]) -> Any:
    """Sampling flags as SamplingDefaults, with what the strategies need of every call
    (`tts.context.defaults_for`: logprobs only when a component reads them)."""
    from tts.context import SamplingDefaults, defaults_for

    base = SamplingDefaults(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
                            n_per_request=args.n_per_request or default_n_per_request(args.model))
    return defaults_for(base, *strategies)


def default_n_per_request(model: str | None) -> int:
    if model == "local":
        from tts.local.extra import N_PER_REQUEST

        return N_PER_REQUEST
    return 1


def run_title(args: argparse.Namespace, strategy: Any) -> str:
    """The summary table's title: model, strategy and the parameters it sets."""
    from tts.experiments.grid import describe

    spec = strategy.model_dump(mode="json", exclude_defaults=True)
    spec["kind"] = strategy.kind
    judge = f" · judge {args.judge_model}" if args.judge_model else ""
    return f"tts run · {args.model} · {describe(spec)}{judge}"


async def _handle(args: argparse.Namespace) -> int:
    from tts.display.progress import print_summary, progress_bar
    from tts.experiments.selection_metrics import selector_kind
    from tts.run import run_many
    from tts.tasks import load_tasks

    _check_limits(args)
    tasks = load_tasks(args.tasks)
    strategy = build_strategy(args)
    out_path = _writable_file("--out", args.out)
    if args.trace:
        _writable_file("--trace", args.trace)
    if not args.no_cache:
        _writable_dir("--cache-dir" if args.cache_dir else "cache directory", args.cache_dir or default_cache_dir())
    if args.api_base and args.model != "local":
        await check_reachable(args.api_base)
    backend, backends = make_backends(args)
    defaults = sampling_defaults(args, [strategy])

    trace = open_trace(args, {"model": args.model, "strategy": strategy.model_dump(mode="json")})
    references = {t.id: t.answer for t in tasks}
    started = time.perf_counter()
    # Ctrl-C: every task stops where it is and its result (status cancelled, the answer it has) is
    # written; a second Ctrl-C interrupts at once.
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, _on_interrupt, cancel, loop)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        pass
    try:
        with out_path.open("w", encoding="utf-8") as out, progress_bar(len(tasks), disable=args.quiet) as advance:
            def on_result(res: RunResult) -> None:
                out.write(redact(json.dumps(result_line(res))) + "\n")  # no secret in any line (tts.redact)
                out.flush()  # a crash loses no finished task
                if trace is not None:
                    trace.write_result(res, references.get(res.task_id))
                advance(res)

            results = await run_many(strategy, tasks, backend, backends=backends, defaults=defaults,
                                     seed=args.seed, on_result=on_result, timeout=args.task_timeout, cancel=cancel,
                                     progress=False, trace_content=trace is not None and trace.content)
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
        if trace is not None:
            trace.close()
        for b in (backend, *backends.values()):
            close = getattr(b, "aclose", None)
            if close is not None:
                await close()
    print_summary(results, wall_s=time.perf_counter() - started, backend=backend, out=str(out_path),
                  title=run_title(args, strategy), references=references,
                  selector=selector_kind(strategy.model_dump(mode="json")))
    if cancel.is_set():
        print("tts run: interrupted: the stopped tasks' results (status cancelled) are in " + str(out_path),
              file=sys.stderr)
        return 130
    if any(r.status == "budget_exceeded" for r in results):
        return 3
    return 1 if any(r.status == "error" for r in results) else 0

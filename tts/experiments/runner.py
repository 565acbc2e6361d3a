"""Running a grid: every configuration on every task, sharing samples through one cache, writing
one JSON line per (configuration, task) as it finishes, and resuming from those lines.

Sharing: the cache key holds the sample index, so self-consistency n=4 asks for exactly the first
4 of n=16's samples, and a sweep of single + n=4, 8, 16 pays 16 samples per task. Each row's
figures are what its OWN answers consumed (`RunResult.usage` and its call records, cache hits
included), never what happened to be paid while it ran; `Comparison.paid` says what was paid.

Resuming: a (configuration, task) already in `results.jsonl` with status `ok` is not run again;
the others run, and every call that had completed before a crash comes back from the cache.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tts.answers import is_correct
from tts.context import SamplingDefaults
from tts.errors import ConfigError
from tts.experiments.grid import Config, expand_grid
from tts.experiments.selection_metrics import candidate_facts
from tts.experiments.stats import stages
from tts.experiments.table import Comparison, summarize
from tts.records import Completion, RunResult, Task, Usage
from tts.redact import redact
from tts.seam import Backend, BackendWrapper, ChatRequest

RESULTS = "results.jsonl"
LATENCY = "latency.json"


class LatencyProbe(BackendWrapper):
    """Outermost layer of a compare backend. Keeps the service latency (send to answer, measured by
    the base backend, so no queueing) of each paid call: the `latency` in wall_s = stages x latency.
    A cache hit returns after one short sleep, so calls issued together still overlap in the call
    records and count as one stage (a hit otherwise returns before its sibling is even issued)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.samples: list[float] = []

    async def complete(self, request: ChatRequest) -> list[Completion]:
        out = await self.inner.complete(request)
        if out and out[0].cached:
            await asyncio.sleep(0.001)
        else:
            self.samples += [c.latency_s for c in out[:1] if c.latency_s > 0]
        return out


def _with_cache(backend: Backend, directory: Path) -> Backend:
    """`backend` itself when it caches already; else wrapped in a cache (sharing and resuming need one)."""
    from tts.wrappers.accounting import AccountingBackend
    from tts.wrappers.cache import CacheBackend

    if isinstance(backend, BackendWrapper) and backend.find(CacheBackend) is not None:
        return backend
    accounting = backend.find(AccountingBackend) if isinstance(backend, BackendWrapper) else None
    return CacheBackend(backend, directory, on_hit=accounting.record if accounting is not None else None)


def model_name(backend: Any) -> str:
    """A model label for a backend the caller did not name: its base model, else its namespace."""
    layer = backend
    while getattr(layer, "inner", None) is not None:
        layer = layer.inner
    name = getattr(layer, "model", None)
    return name if isinstance(name, str) else str(getattr(backend, "namespace", type(backend).__name__))


def result_line(cfg: Config, key: str, res: RunResult, reference: str | None = None) -> dict[str, Any]:
    """One (configuration, task) as results.jsonl stores it: enough to rebuild every figure
    (`reference`: the task's answer, to grade each candidate for the selection figures)."""
    answered = [r for r in res.trace if r.error is None]
    return {
        "key": key, "label": cfg.label, "family": cfg.family, "model": cfg.model, "task": res.task_id,
        "answer": res.answer, "correct": res.correct, "status": res.status, "error": res.error,
        "usage": res.usage.model_dump(),
        "calls": len(answered),
        "cached_calls": sum(r.cached for r in answered),
        "stages": stages(res.trace),
        "measured_wall_s": round(res.wall_s, 4),
        "candidates": candidate_facts(res, reference),
        "votes": res.metadata.get("votes"),
        "tournament": res.metadata.get("tournament"),
    }


def read_lines(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The last line per (configuration key, task) of a results file; a torn last line is skipped."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            out[(row["key"], row["task"])] = row
        except (ValueError, KeyError, TypeError):
            continue  # a line cut off by a kill
    return out


def _latencies(path: Path | None, models: Iterable[str]) -> dict[str, list[float]]:
    stored: dict[str, list[float]] = {}
    if path is not None and path.exists():
        try:
            stored = {k: [float(x) for x in v] for k, v in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError, TypeError):
            stored = {}
    return {m: stored.get(m, []) for m in models}


def as_tasks(tasks: Any) -> list[Task]:
    from tts.run import as_task
    from tts.tasks import load_tasks

    if isinstance(tasks, (str, Path)):
        return load_tasks(tasks)
    out = [as_task(t, i) for i, t in enumerate(tasks)]
    if not out:
        raise ConfigError("compare needs at least one task")
    if len({t.id for t in out}) != len(out):
        raise ConfigError("compare: task ids must be unique (results are paired by task id)")
    return out


async def compare(
    tasks: Any,
    grid: Any,
    backend: Backend | Mapping[str, Backend],
    *,
    out: str | Path | None = None,
    baseline: str | None = None,
    bootstrap: int = 1000,
    backends: dict[str, Backend] | None = None,
    defaults: SamplingDefaults | None = None,
    seed: int = 0,
    latency_s: float | None = None,
    progress: bool | None = None,
    on_result: Callable[[Config, RunResult], Any] | None = None,
    trace_content: bool = False,
) -> Comparison:
    """Run every configuration of `grid` on `tasks` and compare them.

    `tasks`: Tasks, prompts or a JSONL path. `grid`: a YAML/JSON path, a list of specs or one spec
    (any field may be a list; see `tts.experiments.grid`). `backend`: one backend, or {model: backend}
    to make the model another axis. `backends`: extra roles (e.g. {"judge": ...}) for every model.
    `out`: a directory for results.jsonl (resumable), summary.json, the plots and index.html.
    `baseline`: the label every row is paired against (default: the first row). `latency_s`: the
    per-call latency for wall_s = stages x latency (default: the median measured on paid calls).
    `progress`: a live progress display (default: on in Jupyter). `on_result(config, result)` is
    told about every (configuration, task) run now (e.g. to write traces); `trace_content`: its
    results' call records keep the messages and replies (see `run_task`). A backend without a cache gets
    one (in `out/cache`, else a temporary directory): sharing samples and resuming need it.
    """
    from tts.display.progress import in_notebook, progress_bar
    from tts.run import run_many
    from tts.spec import strategy_from_spec
    from tts.wrappers.accounting import AccountingBackend

    task_list = as_tasks(tasks)
    per_model = dict(backend) if isinstance(backend, Mapping) else {model_name(backend): backend}
    configs = expand_grid(grid, list(per_model))
    labels = [c.label for c in configs]
    if baseline is not None and baseline not in labels:
        raise ConfigError(f"baseline {baseline!r} is not a label of this grid; labels: {', '.join(labels)}")
    defaults = defaults or SamplingDefaults()
    salt = json.dumps({"defaults": defaults.model_dump(mode="json"), "seed": seed}, sort_keys=True)
    out_dir = Path(out) if out is not None else None
    tmp = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        cache_root = out_dir / "cache"
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tts-compare-")
        cache_root = Path(tmp.name)
    probes = {m: LatencyProbe(_with_cache(b, cache_root / f"m{i}")) for i, (m, b) in enumerate(per_model.items())}
    added = [p.inner for m, p in probes.items() if p.inner is not per_model[m]]  # caches compare made
    roles = {name: LatencyProbe(b) for name, b in (backends or {}).items()}  # hits pad here too: same stages
    ledgers = {m: (b.find(AccountingBackend) if isinstance(b, BackendWrapper) else None) for m, b in per_model.items()}
    paid_before = {m: (a.usage if a is not None else Usage()) for m, a in ledgers.items()}

    results_path = out_dir / RESULTS if out_dir is not None else None
    done = read_lines(results_path) if results_path is not None else {}
    keys = {c.label: c.key(salt) for c in configs}
    references = {t.id: t.answer for t in task_list}
    todo = {c.label: [t for t in task_list if done.get((keys[c.label], t.id), {}).get("status") != "ok"]
            for c in configs}
    total = len(configs) * len(task_list)
    skipped = total - sum(len(v) for v in todo.values())
    show = in_notebook() if progress is None else progress
    sink = results_path.open("a", encoding="utf-8") if results_path is not None else None
    try:
        with progress_bar(total, disable=not show, label="compare", completed=skipped) as advance:
            for cfg in configs:
                pending = todo[cfg.label]
                if not pending:
                    continue
                advance.relabel(cfg.label)  # type: ignore[attr-defined]
                key = keys[cfg.label]

                def record(res: RunResult, cfg: Config = cfg, key: str = key) -> None:
                    line = result_line(cfg, key, res, references.get(res.task_id))
                    done[(key, res.task_id)] = line
                    if sink is not None:
                        sink.write(redact(json.dumps(line)) + "\n")  # no secret in any line (tts.redact)
                        sink.flush()  # a kill loses no finished task
                    if on_result is not None:
                        on_result(cfg, res)
                    advance(res)

                await run_many(strategy_from_spec(cfg.spec), pending, probes[cfg.model], backends=roles,
                               defaults=defaults, seed=seed, on_result=record, progress=False,
                               trace_content=trace_content)
    finally:
        if sink is not None:
            sink.close()
        for cache in added:
            cache.close()  # only the caches compare made: the caller's backends stay open
        if tmp is not None:
            tmp.cleanup()

    latency = _latencies(out_dir / LATENCY if out_dir is not None else None, per_model)
    for m, probe in probes.items():
        latency[m] = (latency[m] + probe.samples)[-2000:]
    if out_dir is not None:
        (out_dir / LATENCY).write_text(json.dumps(latency))
    per_call = {m: latency_s if latency_s is not None else (statistics.median(v) if v else None)
                for m, v in latency.items()}
    rows = {c.label: [graded(done[(keys[c.label], t.id)], t.answer) for t in task_list
                      if (keys[c.label], t.id) in done] for c in configs}
    paid = {m: (a.usage if a is not None else Usage()) for m, a in ledgers.items()}
    paid = {m: _minus(paid[m], paid_before[m]) for m in paid}
    result = summarize(configs, rows, tasks=[t.id for t in task_list], baseline=baseline or labels[0],
                       bootstrap=bootstrap, seed=seed, latency=per_call, paid=paid)
    if out_dir is not None:
        from tts.experiments.report import write_report

        write_report(result, out_dir, rows)
    return result


def graded(line: dict[str, Any], reference: str | None) -> dict[str, Any]:
    """`line` with each candidate graded (lines written before candidates were graded lack it)."""
    cands = line.get("candidates") or []
    if all("right" in c for c in cands):
        return line
    return {**line, "candidates": [{**c, "right": is_correct(c.get("answer"), reference)} for c in cands]}


def _minus(a: Usage, b: Usage) -> Usage:
    return Usage(**{k: getattr(a, k) - getattr(b, k) for k in Usage.model_fields})


def compare_sync(*args: Any, **kwargs: Any) -> Comparison:
    """`compare` from a plain script (in Jupyter, `await tts.compare(...)`)."""
    from tts.run import run_sync

    return run_sync(compare(*args, **kwargs))

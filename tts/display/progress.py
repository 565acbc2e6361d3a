"""What a person sees: a progress bar while a run goes, and a summary table at the end (rich;
both work in a terminal and in Jupyter)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tts.records import RunResult, Usage
from tts.redact import redact


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a live display is the default)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


@contextmanager
def counting_bars(totals: dict[str, int], *, disable: bool = False,
                  completed: dict[str, int] | None = None) -> Iterator[Any]:
    """One live bar per label (done/total, a free text field, elapsed time), on stderr; yields rich's
    `Progress` and the bars' ids by label. The one progress display: `progress_bar` (tasks) and the
    swe runs (instances and rollouts) are both built on it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[acc]}"), TimeElapsedColumn(), console=Console(file=sys.stderr),
                  disable=disable, transient=False) as progress:
        ids = {label: progress.add_task(label, total=total, completed=(completed or {}).get(label, 0), acc="")
               for label, total in totals.items()}
        yield progress, ids


@contextmanager
def progress_bar(total: int, *, disable: bool = False, label: str = "tasks",
                 completed: int = 0) -> Iterator[Callable[[RunResult], None]]:
    """Yields `advance(result)`; shows done/total, accuracy so far and elapsed time. Live in a
    terminal and in Jupyter (rich's notebook display). `advance.relabel(text)` renames the bar."""
    seen = {"graded": 0, "right": 0}
    with counting_bars({label: total}, disable=disable, completed={label: completed}) as (progress, ids):
        bar = ids[label]

        def advance(res: RunResult) -> None:
            if res.correct is not None:
                seen["graded"] += 1
                seen["right"] += bool(res.correct)
            acc = f"acc {seen['right']}/{seen['graded']}" if seen["graded"] else ""
            progress.update(bar, advance=1, acc=acc)

        advance.relabel = lambda text: progress.update(bar, description=text)  # type: ignore[attr-defined]
        yield advance


def summary_rows(results: Sequence[RunResult], wall_s: float,
                 references: dict[str, str | None] | None = None, selector: str | None = None) -> list[tuple[str, str]]:
    """Consumed figures (what the answers rest on, cache hits included: the same on a warm cache)
    with what this run paid beside them; with the tasks' `references`, where the answers were lost
    (oracle, selection, judge and by-round figures, `tts.experiments.selection_metrics`)."""
    usage = Usage.total(r.usage for r in results)
    paid = Usage.total(r.paid for r in results)
    graded = [r for r in results if r.correct is not None]
    rows = [("tasks", str(len(results)))]
    if graded:
        right = sum(bool(r.correct) for r in graded)
        rows.append(("accuracy", f"{right}/{len(graded)} = {right / len(graded):.1%}"))
        if references:
            from tts.experiments.selection_metrics import describe, selection_figures, task_line

            lines = [task_line(r, references.get(r.task_id)) for r in results]
            rows += describe(selection_figures(lines, selector))
    statuses = {s: sum(r.status == s for r in results) for s in ("budget_exceeded", "cancelled", "timeout", "error")}
    rows += [(s.replace("_", " "), str(n)) for s, n in statuses.items() if n]
    rows += [
        ("calls", f"{usage.calls:,} (paid {paid.calls:,})"),
        ("cache hits", str(usage.cached_calls)),
        ("tokens", f"{usage.total_tokens:,} ({usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion; "
                   f"paid {paid.total_tokens:,})"),
        ("cost", f"${usage.cost_usd:.4f} at list price (paid ${paid.cost_usd:.4f})"
         + (f"; {usage.unpriced_calls} calls unpriced" * bool(usage.unpriced_calls))),
        ("wall time", f"{wall_s:.1f} s"),
    ]
    return rows


def print_summary(results: Sequence[RunResult], *, wall_s: float, backend: Any = None, out: str | None = None,
                  title: str = "tts run", references: dict[str, str | None] | None = None,
                  selector: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in summary_rows(results, wall_s, references, selector):
        table.add_row(key, value)
    from tts.seam import BackendWrapper
    from tts.wrappers.retry import RetryBackend

    retry = backend.find(RetryBackend) if isinstance(backend, BackendWrapper) else None
    retries = retry.retries if retry is not None else None
    if retries:
        table.add_row("retries", str(retries))
    if out:
        table.add_row("results", out)
    Console().print(table)
    errors = [r for r in results if r.status == "error"]
    if errors:
        first = errors[0]
        # one line however wide the terminal (no wrapping), its text as is (no markup), no secret in it
        Console(file=sys.stderr, soft_wrap=True).print(
            redact(f"{len(errors)} task(s) failed; first: {first.task_id}: {first.error}"), style="red",
            markup=False, highlight=False)

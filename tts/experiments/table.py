"""The comparison table: one row per configuration, built from the (configuration, task) lines.

`summarize` computes every figure from the lines alone (so a resumed compare and a fresh one
agree); `Comparison` holds the rows, renders as a rich table in a terminal and as HTML (table and
plot) in Jupyter, and draws the plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tts.errors import MissingDependency
from tts.experiments.grid import Config
from tts.experiments.selection_metrics import selection_figures, selector_kind
from tts.experiments.stats import bootstrap_ci, mcnemar, paired_bootstrap, pareto_flags
from tts.records import Usage


def summarize(configs: Sequence[Config], lines: dict[str, list[dict[str, Any]]], *, tasks: Sequence[str],
              baseline: str, bootstrap: int = 1000, seed: int = 0, latency: dict[str, float | None] | None = None,
              paid: dict[str, Usage] | None = None) -> Comparison:
    """Rows for `configs` from their lines. Accuracy counts a task right only when graded right
    (an error or a missing answer is wrong); tasks without a reference answer are left out."""
    latency = latency or {}
    rows: list[dict[str, Any]] = []
    by_label: dict[str, dict[str, bool]] = {}
    for cfg in configs:
        got = lines.get(cfg.label, [])
        graded = {x["task"]: bool(x["correct"]) for x in got if x.get("correct") is not None}
        by_label[cfg.label] = graded
        usage = Usage.total(Usage.model_validate(x["usage"]) for x in got)
        outcomes = list(graded.values())
        acc = sum(outcomes) / len(outcomes) if outcomes else math.nan
        low, high = bootstrap_ci(outcomes, resamples=bootstrap, seed=seed) if outcomes else (math.nan, math.nan)
        per_call = latency.get(cfg.model)
        mean_stages = sum(x["stages"] for x in got) / len(got) if got else math.nan
        rows.append({
            "label": cfg.label, "family": cfg.family, "spec": cfg.spec, "model": cfg.model,
            "tasks": len(got), "graded": len(outcomes), "correct": sum(outcomes),
            "accuracy": acc, "ci_low": low, "ci_high": high,
            "total_tokens": usage.total_tokens, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "cost_usd": usage.cost_usd,
            "unpriced_calls": usage.unpriced_calls,
            "calls": sum(x["calls"] for x in got), "cached_calls": sum(x["cached_calls"] for x in got),
            "stages": mean_stages,
            "wall_s": mean_stages * per_call if per_call is not None and got else None,
            "errors": sum(x["status"] == "error" for x in got),
            "budget_exceeded": sum(x["status"] == "budget_exceeded" for x in got),
            "missing": len(tasks) - len(got),
        })
        fig = selection_figures(got, selector_kind(cfg.spec))
        rows[-1].update(oracle_accuracy=fig["oracle_accuracy"], selection_accuracy=fig["selection_accuracy"],
                        judge_accuracy=fig["judge_accuracy"], selection=fig)
    priced = all(r["cost_usd"] > 0 and not r["unpriced_calls"] for r in rows)
    axis = "cost_usd" if priced else "total_tokens"
    for row, flag in zip(rows, pareto_flags([(float(r[axis]), r["accuracy"]) for r in rows]), strict=True):
        row["pareto"] = flag
    base = by_label.get(baseline, {})
    for row in rows:
        mine = by_label[row["label"]]
        common = [t for t in tasks if t in mine and t in base]
        a, b = [mine[t] for t in common], [base[t] for t in common]
        wins, losses, p = mcnemar(a, b)
        delta, dlow, dhigh = paired_bootstrap(a, b, resamples=bootstrap, seed=seed) if common else (math.nan,) * 3
        row["vs_baseline"] = {"baseline": baseline, "tasks": len(common), "delta": delta, "delta_ci_low": dlow,
                              "delta_ci_high": dhigh, "wins": wins, "losses": losses, "p_mcnemar": p}
    meta = {"tasks": len(tasks), "baseline": baseline, "bootstrap": bootstrap, "level": 0.95,
            "pareto_axis": axis, "latency_s": latency,
            "paid": {m: u.model_dump() for m, u in (paid or {}).items()}}
    return Comparison(rows, meta)


def _fmt(x: Any, spec: str = ".1%") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


class Comparison:
    """The result of `tts.compare`: `rows` (dicts, as in summary.json) and `meta`."""

    def __init__(self, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        self.rows = rows
        self.meta = meta

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, label: str) -> dict[str, Any]:
        for row in self.rows:
            if row["label"] == label:
                return row
        raise KeyError(label)

    @property
    def paid(self) -> dict[str, Usage]:
        """What this compare call paid per model (cache hits excluded), vs the rows' consumed usage."""
        return {m: Usage.model_validate(u) for m, u in self.meta.get("paid", {}).items()}

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "rows": [_clean(r) for r in self.rows]}

    def table(self, title: str | None = None) -> Any:
        from rich.table import Table

        base = self.meta.get("baseline")
        table = Table(title=title or f"tts compare · {self.meta.get('tasks')} tasks · baseline {base}")
        for col in ("configuration", "model", "accuracy", "95% CI", "oracle", "selection", "judge", f"vs {base}", "p",
                    "tokens", "cost $", "calls", "stages", "wall s", "pareto"):
            table.add_column(col, justify="left" if col in ("configuration", "model") else "right")
        for r in self.rows:
            v = r["vs_baseline"]
            table.add_row(
                r["label"], r["model"], _fmt(r["accuracy"]), f"{_fmt(r['ci_low'], '.0%')}–{_fmt(r['ci_high'], '.0%')}",
                _fmt(r.get("oracle_accuracy")), _fmt(r.get("selection_accuracy")), _fmt(r.get("judge_accuracy")),
                "-" if r["label"] == base else f"{_fmt(v['delta'], '+.1%')} ({v['wins']}W/{v['losses']}L)",
                "-" if r["label"] == base else f"{v['p_mcnemar']:.2g}",
                f"{r['total_tokens']:,}", f"{r['cost_usd']:.4f}", str(r["calls"]), _fmt(r["stages"], ".1f"),
                _fmt(r["wall_s"], ".2f"), "[green]yes[/green]" if r["pareto"] else "",
            )
        table.caption = ("oracle: some candidate right (pass@N); selection: right when some candidate was; judge: "
                         "contests with one right side won by it; "
                         "tokens, cost and calls: what each row's answers consumed (cache hits included); "
                         f"wall s: stages x per-call latency; pareto on {self.meta.get('pareto_axis')}")
        return table

    def __rich__(self) -> Any:
        return self.table()

    def __repr__(self) -> str:
        from tts.display import to_text

        return to_text(self.table(), width=160)

    def _repr_html_(self) -> str:
        """The same table, losses and plot as index.html (tts view's renderer)."""
        from tts.display.html_view import render_fragment
        from tts.experiments.report_html import comparison_html

        images = {}
        note = ""
        try:
            from tts.experiments.report import plot_png

            images["accuracy_vs_tokens.png"] = plot_png(self, "total_tokens")
        except MissingDependency:  # matplotlib is the optional `plot` extra
            pass
        except Exception as exc:  # a display hook that raises loses the table too
            import html

            note = f"<p>(no plot: {html.escape(f'{type(exc).__name__}: {exc}')})</p>"
        return render_fragment({"tasks": []}, before=comparison_html(self, images) + note)

    def plot(self, x: str = "total_tokens") -> Any:
        """A matplotlib Figure: accuracy (with 95% intervals) against `x` (total_tokens or cost_usd)."""
        from tts.experiments.report import figure

        return figure(self, x)


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: None instead."""
    def fix(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v

    return {k: fix(v) for k, v in row.items()}

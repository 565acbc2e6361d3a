"""What a comparison leaves on disk: summary.json, the plots (matplotlib, the optional `plot`
extra) and index.html, a single file with the table and the plots embedded (no server needed)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tts.errors import MissingDependency
from tts.redact import redact

if TYPE_CHECKING:
    from tts.experiments.table import Comparison

AXES = {"total_tokens": "tokens consumed (all tasks)", "cost_usd": "cost, USD at list price (all tasks)"}


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependency("plots need matplotlib: pip install 'tts-scaling[plot]'") from None


def figure(comparison: Comparison, x: str = "total_tokens") -> Any:
    """Accuracy with its 95% interval against `x`, one line per strategy family (and model), the
    Pareto frontier dashed."""
    if x not in AXES:
        raise ValueError(f"x must be one of {', '.join(AXES)}")
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # a bare Figure: no pyplot, no global state, no GUI backend

    fig = Figure(figsize=(7.5, 4.8))
    FigureCanvasAgg(fig)  # a canvas that can measure text, for placing the labels
    ax = fig.subplots()
    rows = [r for r in comparison.rows if not math.isnan(r["accuracy"])]
    several_models = len({r["model"] for r in rows}) > 1
    lines: dict[str, list[dict[str, Any]]] = {}
    any_oracle = False
    for r in rows:
        lines.setdefault(r["family"] + (f" @ {r['model']}" if several_models else ""), []).append(r)
    for name, members in lines.items():
        members.sort(key=lambda r: r[x])
        xs = [r[x] for r in members]
        ys = [100 * r["accuracy"] for r in members]
        err = [[100 * (r["accuracy"] - r["ci_low"]) for r in members],
               [100 * (r["ci_high"] - r["accuracy"]) for r in members]]
        drawn = ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name)
        oracle = [(r[x], 100 * r["oracle_accuracy"]) for r in members
                  if r.get("oracle_accuracy") is not None and r.get("selection_accuracy") is not None]
        if oracle:  # the family's pass@N above it: the gap is what its selection lost
            ax.plot([p[0] for p in oracle], [p[1] for p in oracle], ls=":", marker="^", ms=5, lw=1.2,
                    color=drawn.lines[0].get_color(), alpha=0.8)
            any_oracle = True
    if any_oracle:
        ax.plot([], [], ls=":", marker="^", ms=5, color="0.35", label="oracle: some candidate right (pass@N)")
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r[x])
    if front:
        ax.plot([r[x] for r in front], [100 * r["accuracy"] for r in front], "k--", lw=1, alpha=0.6, marker="o",
                ms=13, mfc="none", label="Pareto frontier")
    if rows and all(r[x] > 0 for r in rows):
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if x == "total_tokens" else f"{v:.3g}")
        # plain numbers at 1, 2 and 5 of each decade (log-scale minor labels overprint each other)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(AXES[x])
    ax.set_ylabel("accuracy (%), 95% bootstrap interval")
    ax.set_ylim(-2, 108)
    ax.margins(x=0.12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"{comparison.meta.get('tasks')} tasks · {', '.join(sorted({r['model'] for r in rows}))}",
                 fontsize=9)
    fig.tight_layout()
    # after the layout, which moves the axes; a label is the row's own words beyond its family's
    place_labels(ax, [(r["label"].removeprefix(r["family"]).strip() or r["family"], r[x], 100 * r["accuracy"])
                      for r in rows])
    return fig


def place_labels(ax: Any, points: list[tuple[str, float, float]], fontsize: float = 7) -> None:
    """Name each point (name, x, y in data units) beside it: at the first spot, level with it or
    above or below, right or left, whose text stays inside the axes and clears every marker and
    every label placed so far (neighbours at the same accuracy and similar tokens would otherwise
    overprint). A thin line ties a label above or below its point to it. Call it once the layout
    is final."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    radius = 4 * ax.figure.dpi / 72
    placed = [Bbox.from_extents(px - radius, py - radius, px + radius, py + radius)
              for px, py in (ax.transData.transform((x, y)) for _, x, y in points)]
    # level with the point first (right, then left), then higher and lower, tied to it by a line
    spots = [(dx, dy) for dy in (0, 12, -12, 24, -24, 36, -36, 48, -48) for dx in (6, -6)]
    def label(name: str, x: float, y: float, dx: int, dy: int, **extra: Any) -> Any:
        return ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                           ha="left" if dx > 0 else "right", va="center", **extra)

    for name, x, y in sorted(points, key=lambda p: (-p[2], p[1])):
        for dx, dy in [*spots, (6, 0)]:  # the last: give up, overprint
            text = label(name, x, y, dx, dy)
            box = text.get_window_extent(renderer)  # the text alone (a line would widen it)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in placed):
                break
            text.remove()
        placed.append(box)
        if dy:  # above or below its point: a line shows whose it is
            text.remove()
            label(name, x, y, dx, dy, arrowprops=dict(arrowstyle="-", lw=0.4, color="0.5"))


def loss_figure(comparison: Comparison) -> Any:
    """Where each configuration loses: per row a bar of its graded tasks split into right, lost in
    selection (some candidate was right) and lost in generation (none was)."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in comparison.rows if r.get("oracle_accuracy") is not None]
    fig = Figure(figsize=(7.5, 0.9 + 0.38 * max(1, len(rows))))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    names = [r["label"] + (f" @ {r['model']}" if len({x["model"] for x in rows}) > 1 else "") for r in rows]
    right = [100 * r["accuracy"] for r in rows]
    sel = [100 * (r["oracle_accuracy"] - r["accuracy"]) for r in rows]
    gen = [100 * (1 - r["oracle_accuracy"]) for r in rows]
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, right, color="#2d9c52", label="right")
    ax.barh(ys, sel, left=right, color="#f2a93b", label="lost in selection (a candidate was right)")
    ax.barh(ys, gen, left=[a + b for a, b in zip(right, sel, strict=True)], color="#d7dbe3",
            label="lost in generation (no candidate right)")
    for y, a, b in zip(ys, right, sel, strict=True):
        ax.text(a / 2, y, f"{a:.0f}", ha="center", va="center", fontsize=7, color="white")
        if b >= 4:
            ax.text(a + b / 2, y, f"{b:.0f}", ha="center", va="center", fontsize=7)
    ax.set_yticks(ys, names, fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded tasks")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def plot_png(comparison: Comparison, x: str = "total_tokens") -> bytes:
    buf = io.BytesIO()
    (loss_figure(comparison) if x == "where_lost" else figure(comparison, x)).savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def has_cost(comparison: Comparison) -> bool:
    return any(r["cost_usd"] > 0 for r in comparison.rows)


def write_report(comparison: Comparison, out: Path, lines: dict[str, list[dict[str, Any]]] | None = None) -> list[Path]:
    """summary.json always; the PNGs and index.html (the table always, the plots when matplotlib is
    installed, and each (configuration, task) line through `tts view`'s renderer). Returns the
    files written."""
    from tts.experiments.report_html import render_html

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "summary.json"]
    # the report is what gets attached to papers and bug reports: no secret in it (tts.redact)
    (out / "summary.json").write_text(redact(json.dumps(comparison.to_json(), indent=2, default=str)) + "\n")
    images: dict[str, bytes] = {}
    try:
        images["accuracy_vs_tokens.png"] = plot_png(comparison, "total_tokens")
        if has_cost(comparison):
            images["accuracy_vs_cost.png"] = plot_png(comparison, "cost_usd")
        if any(r.get("oracle_accuracy") is not None for r in comparison.rows):
            images["where_lost.png"] = plot_png(comparison, "where_lost")
    except MissingDependency:
        pass
    for name, data in images.items():
        (out / name).write_bytes(data)
        written.append(out / name)
    (out / "index.html").write_text(redact(render_html(comparison, images, lines)), encoding="utf-8")
    written.append(out / "index.html")
    return written

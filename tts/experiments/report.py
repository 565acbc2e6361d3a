"""What a comparison leaves on disk: summary.json, the plots (matplotlib, the optional `plot`
extra) and index.html, a single file with the table and the plots embedded (no server needed)."""

from __future__ import annotations

import base64
import html
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
    for r in rows:
        lines.setdefault(r["family"] + (f" @ {r['model']}" if several_models else ""), []).append(r)
    for name, members in lines.items():
        members.sort(key=lambda r: r[x])
        xs = [r[x] for r in members]
        ys = [100 * r["accuracy"] for r in members]
        err = [[100 * (r["accuracy"] - r["ci_low"]) for r in members],
               [100 * (r["ci_high"] - r["accuracy"]) for r in members]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name)
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


def plot_png(comparison: Comparison, x: str = "total_tokens") -> bytes:
    buf = io.BytesIO()
    figure(comparison, x).savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def has_cost(comparison: Comparison) -> bool:
    return any(r["cost_usd"] > 0 for r in comparison.rows)


def write_report(comparison: Comparison, out: Path) -> list[Path]:
    """summary.json always; the PNGs and index.html (the table always, the plots when matplotlib is
    installed). Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "summary.json"]
    # the report is what gets attached to papers and bug reports: no secret in it (tts.redact)
    (out / "summary.json").write_text(redact(json.dumps(comparison.to_json(), indent=2, default=str)) + "\n")
    images: dict[str, bytes] = {}
    try:
        images["accuracy_vs_tokens.png"] = plot_png(comparison, "total_tokens")
        if has_cost(comparison):
            images["accuracy_vs_cost.png"] = plot_png(comparison, "cost_usd")
    except MissingDependency:
        pass
    for name, data in images.items():
        (out / name).write_bytes(data)
        written.append(out / name)
    (out / "index.html").write_text(redact(render_html(comparison, images)), encoding="utf-8")
    written.append(out / "index.html")
    return written


_COLUMNS = [("label", "configuration"), ("model", "model"), ("accuracy", "accuracy"), ("ci", "95% CI"),
            ("delta", "vs baseline"), ("p", "McNemar p"), ("total_tokens", "tokens"), ("cost_usd", "cost $"),
            ("calls", "calls"), ("cached_calls", "cached"), ("stages", "stages"), ("wall_s", "wall s"),
            ("pareto", "Pareto")]


def _cell(r: dict[str, Any], key: str, baseline: str) -> str:
    def pct(v: float | None, spec: str = ".1%") -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    v = r["vs_baseline"]
    if key == "ci":
        return f"{pct(r['ci_low'], '.0%')} – {pct(r['ci_high'], '.0%')}"
    if key == "delta":
        return "baseline" if r["label"] == baseline else (
            f"{pct(v['delta'], '+.1%')} [{pct(v['delta_ci_low'], '+.0%')}, {pct(v['delta_ci_high'], '+.0%')}] "
            f"{v['wins']}W/{v['losses']}L")
    if key == "p":
        return "" if r["label"] == baseline else f"{v['p_mcnemar']:.3g}"
    if key == "accuracy":
        return pct(r["accuracy"])
    if key in ("total_tokens", "calls", "cached_calls"):
        return f"{r[key]:,}"
    if key == "cost_usd":
        return f"{r[key]:.4f}"
    if key == "stages":
        return pct(r[key], ".1f")
    if key == "wall_s":
        return "-" if r[key] is None else f"{r[key]:.2f}"
    if key == "pareto":
        return "✓" if r[key] else ""
    return str(r[key])


def render_html(comparison: Comparison, images: dict[str, bytes]) -> str:
    meta = comparison.meta
    base = meta.get("baseline", "")
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in _COLUMNS)
    body = "".join(
        "<tr" + (' class="pareto"' if r["pareto"] else "") + ">"
        + "".join(f"<td>{html.escape(_cell(r, key, base))}</td>" for key, _ in _COLUMNS) + "</tr>\n"
        for r in comparison.rows)
    plots = "".join(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                    f'{base64.b64encode(data).decode()}"/><figcaption>{html.escape(name)}</figcaption></figure>\n'
                    for name, data in images.items())
    if not images:
        plots = "<p>No plots: install matplotlib (<code>pip install 'tts-scaling[plot]'</code>) and rerun.</p>"
    elif "accuracy_vs_cost.png" not in images:
        plots += "<p>No cost plot: no call had a known price (cost counts as $0 for unpriced models).</p>"
    notes = (f"{meta.get('tasks')} tasks. Accuracy with a 95% bootstrap interval over tasks "
             f"({meta.get('bootstrap')} resamples); each row paired against <b>{html.escape(base)}</b> "
             f"on the same tasks (difference with a paired-bootstrap interval, exact McNemar p). Tokens, cost "
             f"and calls are what each row's own answers consumed, cache hits included; wall s is sequential "
             f"stages x per-call latency ({html.escape(json.dumps(meta.get('latency_s')))} s), not queueing. "
             f"Pareto on {html.escape(str(meta.get('pareto_axis')))}.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tts compare</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, td:nth-child(2) {{ text-align: left; }}
tr.pareto td:first-child {{ font-weight: bold; }}
figure {{ display: inline-block; margin: 1em 1em 0 0; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>tts compare</h1>
<p>{notes}</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}</tbody></table>
{plots}
</body></html>
"""

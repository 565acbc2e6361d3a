"""index.html of a comparison: the table (with where each row lost: generation or selection), the
plots, and every (configuration, task) line drawn by `tts view`'s renderer (one renderer)."""

from __future__ import annotations

import base64
import html
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tts.experiments.table import Comparison

_COLUMNS = [("label", "configuration"), ("model", "model"), ("accuracy", "accuracy"), ("ci", "95% CI"),
            ("oracle_accuracy", "oracle (pass@N)"), ("selection_accuracy", "selection"),
            ("judge_accuracy", "judge"), ("delta", "vs baseline"), ("p", "McNemar p"), ("total_tokens", "tokens"),
            ("cost_usd", "cost $"), ("calls", "calls"), ("cached_calls", "cached"), ("stages", "stages"),
            ("wall_s", "wall s"), ("pareto", "pareto")]


def pct(v: float | None, spec: str = ".1%") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _cell(r: dict[str, Any], key: str, baseline: str) -> str:
    v = r["vs_baseline"]
    if key == "ci":
        return f"{pct(r['ci_low'], '.0%')} – {pct(r['ci_high'], '.0%')}"
    if key == "delta":
        return "baseline" if r["label"] == baseline else (
            f"{pct(v['delta'], '+.1%')} [{pct(v['delta_ci_low'], '+.0%')}, {pct(v['delta_ci_high'], '+.0%')}] "
            f"{v['wins']}W/{v['losses']}L")
    if key == "p":
        return "" if r["label"] == baseline else f"{v['p_mcnemar']:.3g}"
    if key in ("accuracy", "oracle_accuracy", "selection_accuracy", "judge_accuracy"):
        return pct(r.get(key))
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


def rounds_text(fig: dict[str, Any]) -> str:
    return " → ".join(f"r{r['round']} {pct(r['accuracy'], '.0%')}" + (
        f" (+{r['fixed']}/−{r['broke']})" if r["round"] > 1 else "") for r in fig.get("rounds") or [])


def judge_text(fig: dict[str, Any]) -> str:
    if fig.get("judge_accuracy") is None:
        return "-"
    text = f"{pct(fig['judge_accuracy'])} of {fig['judge_contests']} contests"
    if fig.get("judge_votes"):
        text += f"; {pct(fig['judge_vote_accuracy'])} of {fig['judge_votes']} votes"
    if fig.get("judge_drawn"):
        text += f"; {fig['judge_drawn']} decided by a draw (no valid vote)"
    if len(fig.get("judge_rounds") or []) > 1:
        text += "; " + ", ".join(f"r{r['round']} {r['right']}/{r['contests']}" for r in fig["judge_rounds"])
    return text


def loss_table(comparison: Comparison) -> str:
    """Per row: right, lost in selection, lost in generation (as % of graded tasks), and the judge
    and round figures behind them."""
    body = ""
    for r in comparison.rows:
        fig = r.get("selection") or {}
        if fig.get("oracle_accuracy") is None:
            continue
        sel, gen = fig["selection_loss"], fig["generation_loss"]
        bar = "".join(f'<span class="bar {cls}" style="width:{max(0.0, 160 * v):.0f}px"></span>'
                      for cls, v in (("win", r["accuracy"]), ("sel", sel), ("lose", gen)))
        body += (f"<tr><td>{html.escape(r['label'])}</td><td class=n>{pct(r['accuracy'])}</td>"
                 f"<td class=n>{pct(fig['oracle_accuracy'])}</td><td class=n>{pct(sel)}</td><td class=n>{pct(gen)}</td>"
                 f"<td class=n>{pct(fig['selection_accuracy'])}</td><td>{html.escape(judge_text(fig))}</td>"
                 f"<td>{html.escape(rounds_text(fig))}</td><td>{bar}</td></tr>\n")
    if not body:
        return ""
    return ("<h2>where each configuration loses</h2><p class=note>Of the graded tasks: <b>oracle</b>, some "
            "candidate was right (pass@N); <b>lost in selection</b> = oracle − accuracy (a right candidate was "
            "there and was not picked); <b>lost in generation</b> = 1 − oracle (no candidate was right). "
            "<b>selection</b>: accuracy on the tasks where some candidate was right. <b>judge</b>: of tournament "
            "contests with exactly one right side, the share it won (and of their votes). <b>rounds</b>: the "
            "accuracy of each refinement round's answer (its drafts' majority), +fixed/−broke against the round "
            "before.</p><table><tr><th>configuration</th><th class=n>accuracy</th><th class=n>oracle</th>"
            "<th class=n>lost in selection</th><th class=n>lost in generation</th><th class=n>selection</th>"
            "<th>judge</th><th>rounds</th><th>right · selection · generation</th></tr>\n" + body + "</table>")


def comparison_html(comparison: Comparison, images: dict[str, bytes]) -> str:
    """The table, where each row loses, and the plots (the part a notebook shows too)."""
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
             f"Pareto on {html.escape(str(meta.get('pareto_axis')))}. In the plot, each family's oracle "
             f"(some candidate right) is the dotted line above it.")
    return (f'<div class="tts-compare"><h2>tts compare</h2><p class=note>{notes}</p>'
            f'<table class="comparison"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>'
            f"{loss_table(comparison)}{plots}</div>")


def render_html(comparison: Comparison, images: dict[str, bytes],
                lines: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """index.html: the comparison, then every (configuration, task) as `tts view` draws it."""
    from tts.display.html_view import render_page
    from tts.display.view_doc import from_compare_lines

    doc = from_compare_lines(lines or {}, title="tts compare")
    return render_page(doc, before=comparison_html(comparison, images))

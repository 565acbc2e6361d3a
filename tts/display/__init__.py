"""Show results and traces as rich tables and trees: in a terminal (`tts show`, `tts swe`) and in
Jupyter (`RunResult._repr_html_` and `show(results)` delegate here). rich is imported lazily.

`table` is the one table builder: the results table, the candidates, the votes and `tts swe`'s
per-instance table are all built with it. The records are only read here (by attribute): this
module imports no record class at run time, so `tts.records` can delegate its display to it
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tts.records import CallRecord, RunResult


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
          title_justify: str = "center", numbers: Iterable[str] = (), caption: str | None = None,
          options: dict[str, dict[str, Any]] | None = None) -> Any:
    """A rich table: `numbers` are right-aligned; `options[column]` are more `add_column` options."""
    from rich.table import Table

    t = Table(title=title, title_justify=title_justify)
    right = set(numbers)
    for col in columns:
        t.add_column(col, **{"justify": "right" if col in right else "left", **(options or {}).get(col, {})})
    for row in rows:
        t.add_row(*(str(x) for x in row))
    t.caption = caption
    return t


@dataclass
class Stats:
    calls: int = 0
    cached: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    max_latency_s: float = 0.0

    def add(self, rec: CallRecord) -> None:
        self.calls += 1
        self.cached += rec.cached
        self.errors += rec.error is not None
        self.prompt_tokens += rec.usage.prompt_tokens
        self.completion_tokens += rec.usage.completion_tokens
        self.latency_s += rec.latency_s
        self.max_latency_s = max(self.max_latency_s, rec.latency_s)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def describe(self) -> str:
        parts = [f"{self.calls} call{'s' if self.calls != 1 else ''}", f"{self.tokens:,} tok"]
        if self.cached:
            parts.append(f"{self.cached} cached")
        if self.errors:
            parts.append(f"[red]{self.errors} failed[/red]")
        if self.calls:
            parts.append(f"latency Σ{self.latency_s:.2f}s max {self.max_latency_s:.2f}s")
        return " · ".join(parts)


@dataclass
class Node:
    """One strategy path segment: usage of its subtree, its own calls by role, its children."""

    name: str
    total: Stats = field(default_factory=Stats)
    roles: dict[str, Stats] = field(default_factory=dict)
    children: dict[str, Node] = field(default_factory=dict)


def call_tree(calls: Iterable[CallRecord], root: str = "run") -> Node:
    """Aggregate calls by strategy path ("rtv/pdr/round1" -> rtv > pdr > round1), then by role."""
    top = Node(root)
    for rec in calls:
        node = top
        node.total.add(rec)
        for part in [p for p in rec.path.split("/") if p]:
            node = node.children.setdefault(part, Node(part))
            node.total.add(rec)
        node.roles.setdefault(rec.role, Stats()).add(rec)
    return top


def render_tree(node: Node, title: str | None = None) -> Any:
    from rich.tree import Tree

    def label(n: Node, name: str) -> str:
        return f"[bold]{name}[/bold]  [dim]{n.total.describe()}[/dim]"

    def fill(tree: Any, n: Node) -> None:
        for role, stats in sorted(n.roles.items()):
            tree.add(f"[cyan]{role}[/cyan]  {stats.describe()}")
        for child in n.children.values():
            fill(tree.add(label(child, child.name)), child)

    tree = Tree(label(node, title or node.name))
    fill(tree, node)
    return tree


def results_table(results: Sequence[RunResult], title: str | None = None) -> Any:
    """One row per task: answer, correct, status, calls, tokens and USD consumed (cache hits included)
    and paid in this run, wall time (and PDR's budgets)."""
    numbers = ("calls", "cached", "tokens", "paid tokens", "cost $", "paid $", "wall s")
    budgets = any("B_seq" in r.metadata for r in results)
    rows = []
    for r in results:
        mark = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[r.correct]
        row = [r.task_id, r.strategy, str(r.answer), mark, r.status, str(r.usage.calls), str(r.usage.cached_calls),
               f"{r.usage.total_tokens:,}", f"{r.paid.total_tokens:,}", f"{r.usage.cost_usd:.4f}",
               f"{r.paid.cost_usd:.4f}", f"{r.wall_s:.2f}"]
        if budgets:
            row.append(f"{r.metadata['B_seq']:,}" if "B_seq" in r.metadata else "-")
        rows.append(row)
    graded = [r for r in results if r.correct is not None]
    caption = None
    if len(results) > 1:
        acc = f"{sum(bool(r.correct) for r in graded)}/{len(graded)}" if graded else "-"
        caption = (f"{len(results)} tasks · accuracy {acc} · "
                   f"{sum(r.usage.total_tokens for r in results):,} tokens "
                   f"(paid {sum(r.paid.total_tokens for r in results):,}) · "
                   f"${sum(r.usage.cost_usd for r in results):.4f} "
                   f"(paid ${sum(r.paid.cost_usd for r in results):.4f})")
    columns = ("task", "strategy", "answer", "correct", "status", *numbers, *(("B_seq",) if budgets else ()))
    return table(columns, rows, title=title, numbers=(*numbers, "B_seq"), caption=caption)


def usage_line(res: RunResult) -> str:
    u = res.usage
    cost = f"${u.cost_usd:.4f}" + (f" ({u.unpriced_calls} calls unpriced)" if u.unpriced_calls else "")
    return (f"[bold]usage[/bold]  {u.calls} calls · {u.cached_calls} cached · {u.prompt_tokens:,} prompt + "
            f"{u.completion_tokens:,} completion tokens · {cost}")


def candidates_table(res: RunResult, limit: int = 32) -> Any:
    """The candidates with their answers; the chosen ones starred."""
    chosen = {c.id for c in res.chosen}
    rows = [("★" if c.id in chosen else "", c.id, str(c.answer), "-" if c.score is None else f"{c.score:.2f}",
             f"{c.usage.total_tokens:,}", " ".join(c.text.split())[:80]) for c in res.candidates[:limit]]
    more = f"... and {len(res.candidates) - limit} more" if len(res.candidates) > limit else None
    return table(("", "candidate", "answer", "score", "tokens", "text"), rows,
                 title=f"{len(res.candidates)} candidates", title_justify="left", numbers=("score", "tokens"),
                 caption=more,
                 options={"text": {"overflow": "ellipsis", "no_wrap": True, "max_width": 60}})


def votes_table(votes: dict[str, float], winner: str | None) -> Any:
    top = max(votes.values(), default=1) or 1
    rows = []
    for answer, count in sorted(votes.items(), key=lambda kv: -kv[1]):
        bar = "█" * max(1, round(20 * count / top))
        rows.append((answer, f"{count:g}", f"[green]{bar}[/green]" if answer == winner else bar))
    return table(("answer", "votes", ""), rows, title="votes", title_justify="left", numbers=("votes",))


def bracket_tree(tournament: dict[str, Any], answers: dict[str, str | None]) -> Any:
    """RTV's rounds: each group's members (with their answers), the votes each got, the winner."""
    from rich.tree import Tree

    tree = Tree(f"[bold]tournament[/bold]  {tournament.get('rounds', 0)} rounds · "
                f"{tournament.get('judge_calls', 0)} judge calls · winners {', '.join(tournament.get('winners', []))}")
    for i, groups in enumerate(tournament.get("groups", []), 1):
        node = tree.add(f"round {i}")
        for g in groups:
            counts = {m: sum(v == m for v in g["votes"]) for m in g["members"]}
            members = " vs ".join(f"{m} ({answers.get(m)}): {counts[m]}" for m in g["members"])
            node.add(f"{members}  →  [green]{g['winner']}[/green] [dim]({g['decided_by']})[/dim]")
    return tree


def result_renderable(res: RunResult) -> Any:
    """One result: its row, usage, candidates with answers, the votes or the tournament bracket, and
    the tree of its calls."""
    from rich.console import Group

    parts: list[Any] = [results_table([res]), usage_line(res)]
    if res.candidates:
        parts.append(candidates_table(res))
    votes = res.metadata.get("votes")
    if isinstance(votes, dict) and votes:
        parts.append(votes_table(votes, res.answer))
    tournament = res.metadata.get("tournament")
    if isinstance(tournament, dict) and tournament.get("groups"):
        parts.append(bracket_tree(tournament, {c.id: c.answer for c in res.candidates}))
    parts.append(render_tree(call_tree(res.trace, res.strategy), f"calls of {res.task_id}"))
    return Group(*parts)


def to_html(renderable: Any, width: int = 110) -> str:
    """A rich renderable as self-contained HTML (for notebooks)."""
    import io

    from rich.console import Console

    console = Console(record=True, file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor",
                      force_jupyter=False)  # in a notebook rich would otherwise display it itself
    console.print(renderable)
    return console.export_html(inline_styles=True, code_format="<pre style=\"font-family:monospace\">{code}</pre>")


def to_text(renderable: Any, width: int = 110) -> str:
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_jupyter=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def results_html(results: Sequence[RunResult], references: dict[str, str | None] | None = None) -> str:
    """Results as `tts view` draws them (one renderer, `tts.display.html_view`), static for a notebook:
    outcome, candidates, votes, the bracket, the rounds and the calls (with what they said when the
    run kept it: `trace_content=True`)."""
    from tts.display.html_view import render_fragment
    from tts.display.view_doc import from_results

    return render_fragment(from_results(results, references))


class View:
    """A displayable wrapper: rich in a terminal (`__rich__`), HTML in Jupyter, text in `repr`."""

    def __init__(self, renderable: Any, results: Sequence[RunResult] | None = None) -> None:
        self.renderable = renderable
        self.results = results

    def __rich__(self) -> Any:
        return self.renderable

    def _repr_html_(self) -> str:
        if self.results is not None:
            return results_html(self.results)
        return to_html(self.renderable)

    def __repr__(self) -> str:
        return to_text(self.renderable)


def show(obj: Any) -> View:
    """A notebook/terminal view of a RunResult, a list of them, or a list of CallRecords."""
    if _is_result(obj):
        return View(result_renderable(obj), [obj])
    items = list(obj)
    if items and all(_is_result(x) for x in items):
        return View(results_table(items), items)
    if all(_is_call(x) for x in items):
        return View(render_tree(call_tree(items)))
    raise TypeError(f"show() takes a RunResult, a list of RunResults or of CallRecords, not {type(obj).__name__}")


# By shape, not by class: this module imports no record class (see the module docstring).
def _is_result(x: Any) -> bool:
    return all(hasattr(x, a) for a in ("task_id", "chosen", "candidates", "trace"))


def _is_call(x: Any) -> bool:
    return all(hasattr(x, a) for a in ("role", "path", "latency_s", "cached"))

"""The one HTML renderer of runs (`tts view`, the notebook, `tts compare`'s index.html): a view
document (`tts.display.view_doc`) as a self-contained page, or one task as a static fragment.

The page lists every task as a closed section; a task's detail (candidates, vote bars, RTV's
bracket round by round, the refinement rounds with what each draft read, the calls) is stored
as a string and put in the page only when its section is opened, and each distinct message is
stored once and drawn on demand, so a 1,000-task run loads in a few seconds.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections import Counter
from typing import Any

from tts.display.html_assets import CSS, JS, scoped


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def mark(right: bool | None) -> str:
    return {True: '<span class="right">✓</span>', False: '<span class="wrong">✗</span>'}.get(
        right, '<span class="unknown">?</span>')


def bar(value: float, top: float, cls: str = "") -> str:
    width = 0 if not top else max(2, round(160 * value / top))
    return f'<span class="bar {cls}" style="width:{width}px"></span>'


def outcome(t: dict[str, Any]) -> str:
    u = t["usage"]
    parts = [f"<b>answer</b> {esc(t['answer'])} {mark(t['correct'])}"]
    if t.get("reference") is not None:
        parts.append(f"<b>reference</b> {esc(t['reference'])}")
    parts.append(f"<b>status</b> {esc(t['status'])}")
    parts.append(f"{u['calls']} calls ({u['cached_calls']} cached) · {u['prompt_tokens']:,} + "
                 f"{u['completion_tokens']:,} tokens · {t['wall_s']:.2f} s")
    out = "<p>" + " · ".join(parts) + "</p>"
    if t.get("error"):
        out += f'<div class="error"><b>stopped</b>: {esc(t["error"])}</div>'
    meta = {k: v for k, v in (t.get("metadata") or {}).items() if isinstance(v, int | float | str | bool)}
    if meta:
        out += '<p class="note">' + " · ".join(f"{esc(k)} {esc(v)}" for k, v in meta.items()) + "</p>"
    return out


def candidates_section(t: dict[str, Any]) -> str:
    cands = t.get("candidates") or []
    if not cands:
        return ""
    rows = "".join(
        f"<tr><td>{'★' if c.get('chosen') else ''}</td><td>{esc(c['id'])}</td><td>{esc(c.get('answer'))}</td>"
        f"<td>{mark(c.get('right'))}</td><td class=n>{esc(c.get('round') or '')}</td>"
        f"<td class=n>{'' if c.get('score') is None else format(c['score'], '.2f')}</td></tr>" for c in cands)
    out = (f"<h3>{len(cands)} candidates</h3><table><tr><th></th><th>id</th><th>answer</th><th>right</th>"
           f"<th class=n>round</th><th class=n>score</th></tr>{rows}</table>")
    votes = t.get("votes") or (dict(Counter(str(c.get("answer")) for c in cands)) if len(cands) > 1 else None)
    if votes:
        top = max(votes.values())
        right = {str(c.get("answer")): c.get("right") for c in cands}
        title = "votes" if t.get("votes") else "answers among the candidates"
        out += f"<h3>{title}</h3><table class=votes>" + "".join(
            f"<tr><td>{esc(a)} {mark(right.get(a))}</td><td class=n>{n:g}</td>"
            f"<td>{bar(n, top, 'win' if a == str(t['answer']) else '')}</td></tr>"
            for a, n in sorted(votes.items(), key=lambda kv: -kv[1])) + "</table>"
    return out


def bracket_section(t: dict[str, Any]) -> str:
    """RTV's rounds: each contest's members (answer, right), the votes each got, the winner; a
    contest with one right side that the judge gave to the other is marked."""
    tour = t.get("tournament")
    if not tour or not tour.get("groups"):
        return ""
    cands = {c["id"]: c for c in t.get("candidates") or []}
    out = (f"<h3>tournament: {tour.get('rounds', 0)} rounds · {tour.get('judge_calls', 0)} judge calls · "
           f"winner {esc(', '.join(tour.get('winners', [])))}</h3>")
    for r, groups in enumerate(tour["groups"], 1):
        out += f'<div class="round" data-round="{r}"><b>round {r}</b>'
        for g in groups:
            members = g["members"]
            if g.get("decided_by") == "bye" or len(members) < 2:
                out += f'<div class="bye note">{esc(", ".join(members))}: bye</div>'
                continue
            counts = {m: sum(v == m for v in g.get("votes") or []) for m in members}
            good = [m for m in members if cands.get(m, {}).get("right")]
            wrong = len(members) > 1 and len(good) == 1 and g["winner"] != good[0]
            top = max(counts.values(), default=0) or 1
            lines = "".join(
                f'<div class="member{" win" if m == g["winner"] else ""}" data-votes="{counts[m]}">'
                f'{esc(m)} ({esc(cands.get(m, {}).get("answer"))} {mark(cands.get(m, {}).get("right"))}) '
                f'{bar(counts[m], top, "win" if m == g["winner"] else "lose")} {counts[m]}</div>' for m in members)
            invalid = sum(v is None for v in g.get("votes") or [])
            note = f" · {invalid} invalid" if invalid else ""
            out += (f'<div class="contest{" judge-wrong" if wrong else ""}">{lines}<div class="note">'
                    f'→ {esc(g["winner"])} ({esc(g.get("decided_by"))}{note})'
                    f'{" · judge wrong" if wrong else ""}</div></div>')
        out += "</div>"
    return out


def round_of(path: str) -> int | None:
    found = re.findall(r"round(\d+)", path)
    return int(found[-1]) if found else None


def messages_html(ids: list[str] | None, messages: dict[str, dict[str, str]] | None) -> str:
    """What a call read: a placeholder the page's script fills (lazy), or the messages themselves."""
    if ids is None:
        return '<p class="note">(not kept: the run wrote no content)</p>'
    if messages is None:
        return f'<div class="msgs" data-ids="{esc(" ".join(ids))}"></div>'
    return "".join(f'<div class="msg {esc(messages[i]["role"])}"><b>{esc(messages[i]["role"])}</b>'
                   f'<pre>{esc(messages[i]["content"])}</pre></div>' for i in ids if i in messages)


def said(c: dict[str, Any]) -> str:
    if c.get("error"):
        return f'<div class="error">{esc(c["error"])}</div>'
    return "" if c.get("reply") is None else f'<div class="said"><b>said</b><pre>{esc(c["reply"])}</pre></div>'


def diff_words(old: str, new: str) -> str:
    a, b = old.split(), new.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{esc(' '.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{esc(' '.join(b[j1:j2]))}</ins>")
        if op == "equal":
            out.append(esc(" ".join(a[i1:i2])))
    return " ".join(out)


def rounds_section(t: dict[str, Any], messages: dict[str, dict[str, str]] | None) -> str:
    """PDR / sequential refinement: per round, each draft with the workspace it read and what it
    said; with one attempt per round (SR), the attempts side by side with what changed."""
    by_round: dict[int, list[dict[str, Any]]] = {}
    for c in t.get("calls") or []:
        r = round_of(c["path"])
        if r is not None:
            by_round.setdefault(r, []).append(c)
    if len(by_round) < 2:
        return ""
    drafts = {r: [c for c in cs if c["role"] in ("draft", "refine")] for r, cs in sorted(by_round.items())}
    if all(len(d) == 1 for d in drafts.values()) and all(d[0].get("reply") is not None for d in drafts.values()):
        cols, prev = [], None
        for r, (c,) in drafts.items():
            text = c["reply"]
            change = "" if prev is None else f'<div class="note">changed</div><pre>{diff_words(prev, text)}</pre>'
            cols.append(f'<div class="card attempt" data-round="{r}"><b>round {r}</b> <span class="tag">'
                        f'{esc(c["role"])}</span><pre>{esc(text)}</pre>{change}'
                        f'<details><summary>what it read</summary>{messages_html(c["message_ids"], messages)}'
                        f'</details></div>')
            prev = text
        return '<h3>attempts side by side</h3><div class="sidebyside">' + "".join(cols) + "</div>"
    out = "<h3>rounds</h3>"
    for r, cs in sorted(by_round.items()):
        cards = "".join(
            f'<div class="card" data-role="{esc(c["role"])}"><b>{esc(c["role"])}</b> #{c["sample_index"]} '
            f'<span class="note">{esc(c["path"])}</span>'
            f'<details{" open" if r > 1 and c["role"] in ("draft", "refine") else ""}><summary>what it read'
            f'{" (the workspace)" if r > 1 else ""}</summary>'
            f'{messages_html(c["message_ids"], messages)}</details>{said(c)}</div>' for c in cs)
        out += f'<div class="pdr-round" data-round="{r}"><b>round {r}</b><div class="cards">{cards}</div></div>'
    return out


def calls_section(t: dict[str, Any], messages: dict[str, dict[str, str]] | None) -> str:
    calls = t.get("calls") or []
    if not calls:
        return ""
    by_path: dict[str, list[dict[str, Any]]] = {}
    for c in calls:
        by_path.setdefault(c["path"], []).append(c)
    out = f"<h3>{len(calls)} calls</h3>"
    for path, cs in by_path.items():
        tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in cs)
        rows = "".join(
            f'<details class="call"><summary><span class="tag">{esc(c["role"])}</span> #{c["sample_index"]} · '
            f'{c["prompt_tokens"]:,}+{c["completion_tokens"]:,} tok · {c["latency_s"]:.2f} s · at '
            f'{c["started_s"]:.2f} s{" · <span class=cached>cached</span>" if c["cached"] else ""}'
            f'{" · <span class=wrong>failed</span>" if c.get("error") else ""}</summary>'
            f'{messages_html(c["message_ids"], messages)}{said(c)}</details>' for c in cs)
        out += (f'<details class="path"><summary><b>{esc(path)}</b> · {len(cs)} calls · {tokens:,} tokens</summary>'
                f"{rows}</details>")
    return out


def task_detail(t: dict[str, Any], messages: dict[str, dict[str, str]] | None = None) -> str:
    """One task's detail; `messages` inline (static), or None: placeholders the page fills."""
    parts = [outcome(t), candidates_section(t), bracket_section(t), rounds_section(t, messages)]
    parts += [f"<h3>{esc(title)}</h3>{body}" for title, body in t.get("extra") or []]
    parts.append(calls_section(t, messages))
    return "".join(parts)


def task_summary(t: dict[str, Any]) -> str:
    u = t["usage"]
    jw = f' · <span class="wrong">judge wrong ×{t["judge_wrong"]}</span>' if t.get("judge_wrong") else ""
    return (f"<span><b>{esc(t['id'])}</b></span><span>{esc(t.get('group') or t['strategy'])}</span>"
            f"<span>{esc(t['answer'])} {mark(t['correct'])}{jw}</span><span>{esc(t['status'])}</span>"
            f"<span class=n>{u['calls']} calls</span><span class=n>{u['prompt_tokens'] + u['completion_tokens']:,}"
            f" tok</span>")


def task_row(i: int, t: dict[str, Any], body: str = "") -> str:
    correct = {True: "true", False: "false"}.get(t["correct"], "none")
    search = esc(f"{t['id']} {t.get('group') or ''} {t['strategy']} {t['answer']}".lower())
    return (f'<details class="task" data-i="{i}" data-id="{esc(t["id"])}" data-correct="{correct}" '
            f'data-judgewrong="{t.get("judge_wrong", 0)}" data-search="{search}"><summary>{task_summary(t)}</summary>'
            f'<div class="body">{body}</div></details>\n')


def _script_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def render_page(doc: dict[str, Any], before: str = "") -> str:
    """The whole page: `before` (e.g. a comparison's table and plots), the filters, the tasks."""
    tasks = doc["tasks"]
    graded = [t for t in tasks if t["correct"] is not None]
    right = sum(bool(t["correct"]) for t in graded)
    jw = sum(bool(t.get("judge_wrong")) for t in tasks)
    meta = " · ".join(f"{esc(k)}: {esc(v if isinstance(v, str) else json.dumps(v))[:200]}"
                      for k, v in (doc.get("meta") or {}).items())
    rows = "".join(task_row(i, t) for i, t in enumerate(tasks))
    details = [task_detail(t) for t in tasks]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(doc['title'])}</title><style>{CSS}</style></head>
<body><h1>{esc(doc['title'])}</h1><div class="meta">{meta}</div>
{before}
<h2>tasks</h2>
<p id="totals" data-tasks="{len(tasks)}">{len(tasks)} tasks · {right}/{len(graded)} right · {jw} with a contest the
judge got wrong</p>
<div class="filters"><label><input type="checkbox" id="f-wrong"> wrong answers only</label>
<label><input type="checkbox" id="f-judge"> contests the judge got wrong</label>
<label>find <input id="f-query" size="24"></label> <span id="f-count">{len(tasks)}</span> shown</div>
<div id="tasks">
{rows}</div>
<script type="application/json" id="tts-details">{_script_json(details)}</script>
<script type="application/json" id="tts-messages">{_script_json(doc.get('messages') or {})}</script>
<script>{JS}</script>
</body></html>
"""


def render_fragment(doc: dict[str, Any], before: str = "") -> str:
    """Static HTML for a notebook (no script): the tasks with their details inline; one task opens."""
    tasks = doc["tasks"]
    messages = doc.get("messages") or {}
    rows = "".join(task_row(i, t, task_detail(t, messages)) for i, t in enumerate(tasks))
    if len(tasks) == 1:
        rows = rows.replace('<details class="task"', '<details open class="task"', 1)
    return f'<div class="tts-view"><style>{scoped(CSS)}</style>{before}{rows}</div>'

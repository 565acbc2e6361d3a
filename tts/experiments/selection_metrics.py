"""Where a strategy loses: in generation (no candidate was right) or in selection (one was, and
the selector missed it). Computed from per-task lines, wherever the reference answer is known.

    oracle_accuracy     tasks where some candidate (or the answer) was right: pass@N
    selection_accuracy  of those, the tasks answered right (null with one candidate per task)
    judge_accuracy      of tournament contests where exactly one side was right, the share the
                        contest went to it (RTV; per vote too, by round, and how many had no
                        valid vote and went to a seeded draw); for a judge selector over the
                        whole set, of tasks with both right and wrong candidates, the share it
                        chose right
    rounds              PDR / sequential refinement: per round, the accuracy of the round's
                        answer (its drafts' majority) and how many tasks it fixed / broke

A line is a dict with `correct` and `candidates` ([{id, answer, right, round}]) and, for a
tournament, `tournament` (its `Tournament.summary()`); `task_line` makes one from a RunResult.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from tts.answers import is_correct, normalize

JUDGE_SELECTORS = frozenset({"listwise-judge", "pointwise-judge", "p-true"})
"""Selectors that judge the whole candidate set at once: one contest per task."""


def candidate_facts(res: Any, reference: str | None) -> list[dict[str, Any]]:
    """Each candidate's id, answer, whether it is right (None without a reference) and round."""
    return [{"id": c.id, "answer": c.answer, "right": is_correct(c.answer, reference),
             "round": c.metadata.get("round")} for c in res.candidates]


def task_line(res: Any, reference: str | None) -> dict[str, Any]:
    """The facts of one result that the figures below read."""
    return {"task": res.task_id, "correct": res.correct, "candidates": candidate_facts(res, reference),
            "tournament": res.metadata.get("tournament")}


def _ratio(right: int, total: int) -> float | None:
    return right / total if total else None


def _graded(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines with a known outcome whose candidates are graded too (a reference answer is known)."""
    return [x for x in lines if x.get("correct") is not None
            and all(c.get("right") is not None for c in x.get("candidates") or [])]


def oracle_right(line: dict[str, Any]) -> bool:
    """Some candidate was right (or the answer itself: a synthesized answer counts too)."""
    return bool(line["correct"]) or any(c.get("right") for c in line.get("candidates") or [])


def contests(line: dict[str, Any]) -> Iterable[tuple[int, bool, int, int]]:
    """A tournament's decisive contests, as (round, went to the right side, right votes, valid
    votes): those with exactly one right member (a contest of two right or two wrong answers
    says nothing about the judge)."""
    right = {c["id"]: bool(c.get("right")) for c in line.get("candidates") or []}
    for r, groups in enumerate((line.get("tournament") or {}).get("groups") or [], 1):
        for g in groups:
            members = g.get("members") or []
            good = [m for m in members if right.get(m)]
            if len(members) < 2 or len(good) != 1:
                continue
            votes = [v for v in g.get("votes") or [] if v is not None]
            yield r, g.get("winner") == good[0], sum(v == good[0] for v in votes), len(votes)


def round_answers(line: dict[str, Any]) -> dict[int, bool]:
    """Per refinement round, whether its answer was right: the majority of its drafts' answers
    (ties: the earliest draft's answer); {} when the candidates carry no rounds."""
    by_round: dict[int, list[dict[str, Any]]] = {}
    for c in line.get("candidates") or []:
        if isinstance(c.get("round"), int):
            by_round.setdefault(c["round"], []).append(c)
    out = {}
    for r, drafts in sorted(by_round.items()):
        keys = [normalize(c["answer"]) if c.get("answer") is not None else None for c in drafts]
        tally = Counter(k for k in keys if k is not None)
        if not tally:
            out[r] = False
            continue
        top = max(tally.values())
        winner = next(k for k in keys if k is not None and tally[k] == top)
        out[r] = bool(next(c for c, k in zip(drafts, keys, strict=True) if k == winner).get("right"))
    return out


def selection_figures(lines: Sequence[dict[str, Any]], selector: str | None = None) -> dict[str, Any]:
    """The figures above over one configuration's lines (`selector`: its selector's kind, for a
    judge over the whole set). Every ratio is None where it does not apply or nothing was graded."""
    graded = _graded(lines)
    several = any(len(x.get("candidates") or []) > 1 for x in graded)
    oracle = [x for x in graded if oracle_right(x)]
    out: dict[str, Any] = {
        "graded": len(graded),
        "oracle_right": len(oracle),
        "oracle_accuracy": _ratio(len(oracle), len(graded)),
        "selected_right": sum(bool(x["correct"]) for x in graded),
        "selection_accuracy": _ratio(sum(bool(x["correct"]) for x in oracle), len(oracle)) if several else None,
    }
    out["generation_loss"] = None if out["oracle_accuracy"] is None else 1 - out["oracle_accuracy"]
    out["selection_loss"] = (None if out["oracle_accuracy"] is None or not graded
                             else out["oracle_accuracy"] - out["selected_right"] / len(graded))
    out.update(judge_figures(graded, selector))
    out["rounds"] = round_figures(graded)
    return out


def judge_figures(graded: Sequence[dict[str, Any]], selector: str | None = None) -> dict[str, Any]:
    """Judge accuracy per contest and per vote, overall and by tournament round."""
    per_round: dict[int, dict[str, int]] = {}
    for line in graded:
        for r, won, right_votes, votes in contests(line):
            row = per_round.setdefault(r, {"round": r, "contests": 0, "right": 0, "votes": 0, "right_votes": 0,
                                           "drawn": 0})
            row["contests"] += 1
            row["drawn"] += votes == 0  # no valid vote: the seeded draw decided it
            row["right"] += won
            row["votes"] += votes
            row["right_votes"] += right_votes
    if not per_round and selector in JUDGE_SELECTORS:  # one contest per task: the whole set
        mixed = [x for x in graded if any(c.get("right") for c in x["candidates"])
                 and not all(c.get("right") for c in x["candidates"])]
        if mixed:
            right = sum(bool(x["correct"]) for x in mixed)
            per_round[1] = {"round": 1, "contests": len(mixed), "right": right, "votes": 0, "right_votes": 0,
                            "drawn": 0}
    total = {k: sum(r[k] for r in per_round.values()) for k in ("contests", "right", "votes", "right_votes", "drawn")}
    rounds = [{**r, "accuracy": _ratio(r["right"], r["contests"]),
               "vote_accuracy": _ratio(r["right_votes"], r["votes"])} for _, r in sorted(per_round.items())]
    return {"judge_contests": total["contests"], "judge_accuracy": _ratio(total["right"], total["contests"]),
            "judge_votes": total["votes"], "judge_vote_accuracy": _ratio(total["right_votes"], total["votes"]),
            "judge_drawn": total["drawn"],
            "judge_rounds": rounds}


def round_figures(graded: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per refinement round: tasks, right, accuracy, and fixed (wrong->right) and broke (right->wrong)
    against the round before."""
    per_task = [round_answers(x) for x in graded]
    per_task = [p for p in per_task if p]
    if len({r for p in per_task for r in p}) < 2:  # one round (e.g. RTV over PDR finals): nothing refined
        return []
    out = []
    for r in sorted({r for p in per_task for r in p}):
        here = [p for p in per_task if r in p]
        pairs = [(p[r - 1], p[r]) for p in here if r - 1 in p]
        right = sum(p[r] for p in here)
        out.append({"round": r, "tasks": len(here), "right": right, "accuracy": _ratio(right, len(here)),
                    "fixed": sum(not a and b for a, b in pairs), "broke": sum(a and not b for a, b in pairs)})
    return out


def selector_kind(spec: dict[str, Any]) -> str | None:
    """The kind of a strategy spec's selector, when it names one."""
    sel = spec.get("selector")
    return sel.get("kind") if isinstance(sel, dict) else sel if isinstance(sel, str) else None


def describe(fig: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines for a summary table; only the figures that apply."""
    rows = []
    if fig.get("oracle_accuracy") is not None:
        rows.append(("oracle (pass@N)", f"{fig['oracle_right']}/{fig['graded']} = {fig['oracle_accuracy']:.1%} "
                     f"(generation loss {fig['generation_loss']:.1%}, selection loss {fig['selection_loss']:.1%})"))
    if fig.get("selection_accuracy") is not None:
        rows.append(("selection", f"{fig['selection_accuracy']:.1%} right when some candidate was right"))
    if fig.get("judge_accuracy") is not None:
        text = f"{fig['judge_accuracy']:.1%} of {fig['judge_contests']} contests with one right side"
        if fig["judge_votes"]:
            text += f"; {fig['judge_vote_accuracy']:.1%} of {fig['judge_votes']} votes"
        if fig["judge_drawn"]:
            text += f"; {fig['judge_drawn']} with no valid vote (a seeded draw)"
        if len(fig["judge_rounds"]) > 1:
            text += "; by round " + ", ".join(f"r{r['round']} {r['right']}/{r['contests']}"
                                              for r in fig["judge_rounds"])
        rows.append(("judge", text))
    if fig.get("rounds"):
        rows.append(("by round", ", ".join(
            f"r{r['round']} {r['right']}/{r['tasks']}" + (f" (+{r['fixed']} -{r['broke']})" if r["round"] > 1 else "")
            for r in fig["rounds"])))
    return rows

"""A selector's decision over the caller's candidates as a full ranking and the contests behind it.

RTV: the winner first, then by the round each candidate was knocked out in (later is better), then
by the judge votes it drew. A vote (majority): by the answer's tally. Any other selector: the
order it returned (it was asked for every candidate), with its scores where it gave some.
"""

from __future__ import annotations

from typing import Any

from tts.records import Candidate
from tts.selectors.selection import Selection


def ranking_of(sel: Selection, cands: list[Candidate]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the ranking, best first: [{id, rank, ...}], the contests: [{members, votes, winner, ...}])."""
    tournament = sel.metadata.get("tournament")
    if tournament is not None:
        return _bracket_ranking(tournament, cands)
    if "votes" in sel.metadata:
        tally = sel.metadata["votes"]
        by_selector = _ids_in(sel.chosen, cands)
        order = sorted(by_selector, key=lambda cid: (-tally.get(_by_id(cands, cid).answer, 0), by_selector.index(cid)))
        ranking = [{"id": cid, "rank": i + 1, "answer": _by_id(cands, cid).answer,
                    "votes": tally.get(_by_id(cands, cid).answer, 0)} for i, cid in enumerate(order)]
        contest = {"members": [c.id for c in cands], "votes": [c.answer for c in cands], "winner": order[0],
                   "tally": tally, "decided_by": "majority of the candidates' answers"}
        return ranking, [contest]
    order = _ids_in(sel.chosen, cands)
    scores = {c.id: c.score for c in sel.candidates if c.score is not None}
    ranking = [{"id": cid, "rank": i + 1, **({"score": scores[cid]} if cid in scores else {})}
               for i, cid in enumerate(order)]
    return ranking, [{"members": [c.id for c in cands], "winner": order[0], "decided_by": "selector order"}]


def _by_id(cands: list[Candidate], cid: str) -> Candidate:
    return next(c for c in cands if c.id == cid)


def _ids_in(chosen: list[Candidate], cands: list[Candidate]) -> list[str]:
    """The chosen ids first, then every other candidate in the caller's order (none twice)."""
    out: list[str] = []
    for c in [*chosen, *cands]:
        if c.id not in out:
            out.append(c.id)
    return out


def _bracket_ranking(tournament: dict[str, Any], cands: list[Candidate]) -> tuple[list[dict[str, Any]],
                                                                                   list[dict[str, Any]]]:
    reached: dict[str, int] = {c.id: 0 for c in cands}  # the last round each candidate was still in
    drawn: dict[str, int] = {c.id: 0 for c in cands}  # judge votes naming it, over all its contests
    contests = []
    for r, groups in enumerate(tournament.get("groups", []), start=1):
        for g in groups:
            for m in g["members"]:
                reached[m] = r
            for v in g["votes"]:
                if v is not None:
                    drawn[v] += 1
            if g["decided_by"] != "bye":
                contests.append({"round": r, **g})
    winners = tournament.get("winners", [])
    for w in winners:
        reached[w] = len(tournament.get("groups", [])) + 1
    position = {c.id: i for i, c in enumerate(cands)}
    order = sorted(reached, key=lambda cid: (-reached[cid], -drawn[cid], position[cid]))
    ranking = [{"id": cid, "rank": i + 1, "out_in_round": None if cid in winners else reached[cid],
                "judge_votes": drawn[cid]} for i, cid in enumerate(order)]
    return ranking, contests

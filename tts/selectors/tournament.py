"""Recursive Tournament Voting (docs/algorithms.md): select 1 (or K) of N by repeated small-group votes.

Each round shuffles the population (seeded) and cuts it into groups of G; all groups run in
parallel, each with V listwise-judge votes in parallel, every vote seeing the group in a freshly
shuffled order. The majority of valid votes wins; a tie is broken by a seeded RNG (or, with
`tie_break="extra-vote"`, by one more vote among the tied, then the RNG); unparseable
votes are discarded; a group with no valid vote is decided by the seeded RNG (and recorded);
a leftover single candidate gets a bye. Stops when at most K remain.

Calls are made under `<ctx>/rtv/r<round>/g<group>` with role "judge", sample index = vote index,
so the trace shows the tree and the V votes of a group never share a cache entry.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Literal

from pydantic import Field, field_validator

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate, Record, Task
from tts.registry import Component, SummarizerField, register
from tts.selectors.early_stop import check_early_stop, vote_in_waves
from tts.selectors.judge import ListwiseJudge
from tts.selectors.selection import Selection
from tts.selectors.vote import vote
from tts.summarizers.short import ShortSummarizer

Decision = Literal["majority", "tie-rng", "tie-extra-vote", "no-valid-votes-rng", "bye"]


class GroupRecord(Record):
    path: str
    members: list[str]
    """Candidate ids in the group."""
    votes: list[str | None] = Field(default_factory=list)
    """Per vote (in vote-index order), the id it named, or None when unparseable."""
    winner: str
    decided_by: Decision


class RoundRecord(Record):
    index: int
    groups: list[GroupRecord]


class Tournament(Record):
    """What happened in one RTV selection; `winners` is what `select` returns."""

    winners: list[Candidate]
    rounds: list[RoundRecord] = Field(default_factory=list)
    judge_calls: int = 0

    def summary(self) -> dict:
        """A small JSON-able digest for RunResult.metadata."""
        return {
            "rounds": len(self.rounds),
            "judge_calls": self.judge_calls,
            "winners": [c.id for c in self.winners],
            "groups": [[{"members": g.members, "votes": g.votes, "winner": g.winner, "decided_by": g.decided_by}
                        for g in r.groups] for r in self.rounds],
        }


def bracket(order: list[Candidate], group_size: int, k: int) -> tuple[list[list[Candidate]], int]:
    """One round's groups of the shuffled population `order`, and how many of them are contests:
    only as many contests as it takes to reach `k` survivors (each group of g removes g-1), the
    last one shrunk if it would remove too many; everyone else gets a bye (a group of one)."""
    groups = [order[i:i + group_size] for i in range(0, len(order), group_size)]
    excess = len(order) - k
    contests = removed = 0
    for g in groups:
        if len(g) < 2 or removed >= excess:
            break
        contests += 1
        removed += len(g) - 1
    if removed > excess:
        last = groups[contests - 1]
        keep = len(last) - (removed - excess)
        groups[contests - 1:contests] = [last[:keep]] + [[c] for c in last[keep:]]
    return groups[:contests] + [[c] for g in groups[contests:] for c in g], contests


def contest_winner(votes: list[int | None], size: int, rng: random.Random) -> tuple[int, Decision, list[int]]:
    """The winning position of a contest of `size` from its votes (positions, None = invalid),
    how it was decided, and the tied leaders (for an extra vote). Ties and no valid vote: `rng`."""
    tally = Counter(v for v in votes if v is not None)
    if not tally:
        return rng.randrange(size), "no-valid-votes-rng", []
    top = max(tally.values())
    leaders = sorted(i for i in tally if tally[i] == top)
    if len(leaders) == 1:
        return leaders[0], "majority", leaders
    return rng.choice(leaders), "tie-rng", leaders


@register
class RTV(Component):
    """Recursive Tournament Voting selector."""

    kind: Literal["rtv"] = "rtv"
    group_size: int = Field(2, ge=2)
    """G: candidates compared per judge call."""
    votes: int = Field(8, ge=1)
    """V: judge calls per group, in parallel."""
    judge: ListwiseJudge = Field(default_factory=ListwiseJudge)
    """The listwise judge (its `use`, temperature, prompts, what it sees)."""
    summarizer: SummarizerField = Field(default_factory=ShortSummarizer)
    """Summarizes candidates that arrive without a summary (default: no model call)."""
    tie_break: Literal["rng", "extra-vote"] = "rng"
    """`rng`: a seeded draw (the call count stays exactly V per contest). `extra-vote`: one more
    judge call (sample index V) over the tied candidates; if it names none of them, the draw."""
    early_stop: float | None = None
    """Stop a contest's votes early (tts.selectors.early_stop): 1.0 once the winner is certain (the same
    winner as all V votes: a unanimous contest takes ceil((V+1)/2)), p < 1 once it is the all-V
    winner with posterior probability >= p. None: always V votes."""
    wave: int | None = Field(None, ge=1)
    """Votes per wave with `early_stop` (None: the fewest that could decide)."""

    @field_validator("early_stop")
    @classmethod
    def _valid_early_stop(cls, v: float | None) -> float | None:
        return check_early_stop(v)

    async def decide(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> Selection:
        tournament = await self.tournament(task, candidates, ctx, k)
        return Selection(chosen=tournament.winners, candidates=candidates,
                         metadata={"tournament": tournament.summary()})

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Stopped mid-tournament: among the survivors of the last finished round (all candidates
        before the first), the best-supported answer."""
        where = ctx if ctx.path.rsplit("/", 1)[-1] == "rtv" else ctx.child("rtv")  # as `tournament`
        survivors = list(where.kept("survivors") or candidates)
        _, supporters = vote(survivors, ctx.rng("partial"))
        return supporters[:1] or survivors[:1]

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        """The `k` survivors (fewer only when there are fewer candidates). Survivors that arrived
        without a summary are returned with the summary the judge saw."""
        return (await self.tournament(task, candidates, ctx, k)).winners

    async def tournament(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> Tournament:
        """Run the tournament and return the winners with a per-round record."""
        if k < 1:
            raise ConfigError(f"rtv: select k must be at least 1, got {k}")
        if ctx.path.rsplit("/", 1)[-1] != "rtv":
            ctx = ctx.child("rtv")
        pop = list(await asyncio.gather(*(self._with_summary(task, c, ctx) for c in candidates)))
        wins: Counter[int] = Counter()  # keyed by object identity: ids need not be unique
        rounds: list[RoundRecord] = []
        calls = 0
        while len(pop) > k:
            r = len(rounds) + 1
            order = list(pop)
            ctx.rng(f"r{r}/order").shuffle(order)
            groups, contests = bracket(order, self.group_size, k)
            results = await asyncio.gather(*(
                self._contest(task, g, ctx, r, j + 1) if j < contests else self._bye(g, ctx, r, j + 1)
                for j, g in enumerate(groups)
            ))
            pop = []
            records = []
            for winner, rec in results:
                pop.append(winner)
                records.append(rec)
                calls += len(rec.votes)
                if rec.decided_by != "bye":
                    wins[id(winner)] += 1
            rounds.append(RoundRecord(index=r, groups=records))
            ctx.keep("survivors", pop)  # what a run stopped in a later round picks among
        # Best first: most contests won, then the order of the last round.
        ranked = sorted(range(len(pop)), key=lambda i: (-wins[id(pop[i])], i))
        return Tournament(winners=[pop[i] for i in ranked], rounds=rounds, judge_calls=calls)

    async def _with_summary(self, task: Task, c: Candidate, ctx: RunContext) -> Candidate:
        if c.summary is not None:
            return c
        summary = await self.summarizer.summarize(task, c, ctx.child("summarize"))
        return c.model_copy(update={"summary": summary})

    async def _bye(self, group: list[Candidate], ctx: RunContext, r: int, j: int) -> tuple[Candidate, GroupRecord]:
        (only,) = group
        return only, GroupRecord(path=f"{ctx.path}/r{r}/g{j}", members=[only.id], winner=only.id, decided_by="bye")

    async def _contest(self, task: Task, group: list[Candidate], ctx: RunContext, r: int,
                       j: int) -> tuple[Candidate, GroupRecord]:
        gctx = ctx.child(f"r{r}").child(f"g{j}")
        texts = [self.judge.shown(c) for c in group]  # rendered once, not once per vote
        short = self.judge.is_short(group)
        prompts: dict[tuple[int, ...], str] = {}  # one prompt per order: G=2 has two, whatever V is

        async def one_vote(v: int) -> int | None:
            order = list(range(len(group)))
            gctx.rng(f"v{v}/order").shuffle(order)
            key = tuple(order)
            if key not in prompts:
                prompts[key] = self.judge.prompt(task, [texts[i] for i in order], short)
            pick, _ = await self.judge.vote(task, [group[i] for i in order], gctx, sample_index=v, short=short,
                                            prompt=prompts[key])
            return None if pick is None else order[pick]

        async def draw(start: int, count: int) -> list[int | None]:
            return list(await asyncio.gather(*(one_vote(v) for v in range(start, start + count))))

        # Votes are kept as positions in the group, so candidates with equal ids stay apart.
        votes, _ = await vote_in_waves(draw, self.votes, lambda v: (v, 1.0), early_stop=self.early_stop,
                                       wave=self.wave)
        rng = gctx.rng("tie")
        win, how, leaders = contest_winner(votes, len(group), rng)
        if how == "tie-rng" and self.tie_break == "extra-vote":
            order = list(leaders)
            gctx.rng("tie/order").shuffle(order)
            pick, _ = await self.judge.vote(task, [group[i] for i in order], gctx, sample_index=self.votes)
            votes.append(None if pick is None else order[pick])
            if pick is not None:
                win, how = order[pick], "tie-extra-vote"
        ids = [c.id for c in group]
        named = [None if v is None else ids[v] for v in votes]
        return group[win], GroupRecord(path=gctx.path, members=ids, votes=named, winner=ids[win], decided_by=how)

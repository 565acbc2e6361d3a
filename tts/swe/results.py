"""What an agentic run records: per round, per instance, and the helpers that build and read them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import Field

from tts.records import Candidate, Record, Trajectory, TrajectorySummary, Usage


class RoundRecord(Record):
    index: int
    rollout_ids: list[str]
    prior_ids: list[str] = Field(default_factory=list)
    """The summaries this round's rollouts were shown (empty in round 0)."""
    selected_ids: list[str] = Field(default_factory=list)


class SWEResult(Record):
    instance_id: str
    patch: str | None = None
    chosen_id: str | None = None
    rounds: list[RoundRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    judge_calls: int = 0
    summary_calls: int = 0
    rollouts: int = 0
    agent_cost_usd: float = 0.0
    """What the agent's own model calls cost (as the agent reported it); `usage` is judge + summaries."""
    wall_s: float = 0.0
    error: str | None = None
    rollout_errors: dict[str, int] = Field(default_factory=dict)
    """Each distinct error a rollout ended in, with how many rollouts ended in it."""
    failed_rollouts: int = 0


Event = Callable[[str, str], None]
"""`on_event(kind, instance_id)`: kind is "rollout" (one finished) or "instance"."""


def usable(cands: Sequence[Candidate]) -> list[Candidate]:
    """The candidates a selector may see: rollouts that did not end in an error."""
    return [c for c in cands if not c.metadata.get("error")]


def all_failed(rounds: list[RoundRecord], errors: dict[str, int]) -> str | None:
    """The instance's error when a round ended with every rollout failed (so nothing was selected)."""
    if not rounds or rounds[-1].selected_ids or not errors:
        return None
    n = len(rounds[-1].rollout_ids)
    return f"all {n} rollouts of round {rounds[-1].index} failed"


def rollout_id(iid: str, r: int, k: int) -> str:
    return f"{iid}/round{r}-{k}"


def candidate_of(traj: Trajectory, summary: TrajectorySummary, r: int) -> Candidate:
    """What a selector sees of a rollout: its patch as text, its summary."""
    return Candidate(id=traj.id, text=traj.patch or "", summary=summary,
                     metadata={"outcome": traj.outcome, "round": r, "cost_usd": traj.metadata.get("cost_usd") or 0.0,
                               "error": traj.metadata.get("error")})


def error_lines(res: SWEResult) -> list[str]:
    """One line per distinct error of an instance: its own, then each rollout error with its count."""
    out = [res.error] if res.error and res.error not in res.rollout_errors else []
    out.extend(f"{n}x {err}" if n > 1 else err for err, n in res.rollout_errors.items())
    return out


def count_errors(cands: Sequence[Candidate], into: dict[str, int] | None = None) -> dict[str, int]:
    """Each distinct error the candidates' rollouts ended in, with how many ended in it."""
    errors = {} if into is None else into
    for c in cands:
        if c.metadata.get("error"):
            errors[c.metadata["error"]] = errors.get(c.metadata["error"], 0) + 1
    return errors

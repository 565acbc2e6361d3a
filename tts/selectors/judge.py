"""LLM judges: listwise (pick the best of k) and pointwise (grade each candidate).

Both show the judge each candidate's summary (rendered; the no-model summary when a candidate
has none), or, for a short answer with no model-written summary, its short form (the answer and
a short rationale: a contest between two sums costs about a hundred tokens, not a thousand). When
every candidate of a call is in short form, the judge is asked for the verdict line alone and its
reply is capped at `verdict_tokens` (12), unless `max_tokens` is set; the same when a candidate's
reply is short but its answer was not (an answer the extraction missed needs no essay either).
They call the model with `use="judge"`, so a separate judge model is used when the run
configures one under that name, else the default backend.
"""

from __future__ import annotations

import asyncio
import re
from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.prompts import render
from tts.records import Candidate, Task
from tts.registry import Component, register
from tts.selectors.vote import ScoreSelect
from tts.summarizers.render import approx_tokens
from tts.summarizers.short import RATIONALE_TOKENS, SHORT_REPLY_TOKENS, rationale, summary_text, use_short_form

# Most specific first; within a pattern the last match counts (a judge may reason, then decide).
VERDICT_TOKENS = 12
"""Reply cap of a judge call over short forms: "WINNER: 2" or "SCORE: 7" and a little slack."""

_WINNER_PATTERNS = [
    re.compile(r"winner\s*[:=]\s*\**\s*(?:candidate\s*)?[#\[(]?\s*(\d+)", re.I),
    re.compile(r"best(?:\s+candidate)?\s*(?:[:=]|\bis\b)\s*\**\s*(?:candidate\s*)?[#\[(]?\s*(\d+)", re.I),
    re.compile(r"candidate\s*#?\s*(\d+)", re.I),
]
_SCORE_PATTERNS = [
    re.compile(r"(?:score|grade)\s*[:=]\s*\**\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?", re.I),
    re.compile(r"(-?\d+(?:\.\d+)?)\s*/\s*(\d+)\b"),
]


def parse_winner(text: str, k: int) -> int | None:
    """The 0-based index of the candidate a listwise judge named, or None when it named none
    (or a number outside 1..k)."""
    stripped = text.strip().strip("*.[]()")
    if stripped.isdigit():
        pick = int(stripped)
        return pick - 1 if 1 <= pick <= k else None
    for pattern in _WINNER_PATTERNS:
        found = pattern.findall(text)
        if found:
            pick = int(found[-1])
            return pick - 1 if 1 <= pick <= k else None
    return None


def parse_score(text: str, scale: int = 10) -> float | None:
    """A pointwise grade as a fraction of `scale` (0..1), or None when there is none in range.
    "SCORE: 7", "Grade: 7/10", "7/10" and a bare "7" all read as 0.7 on a 10-point scale."""
    stripped = text.strip().strip("*.")
    matches: list[tuple[str, str]] = []
    if re.fullmatch(r"-?\d+(?:\.\d+)?", stripped):
        matches = [(stripped, "")]
    for pattern in _SCORE_PATTERNS:
        if matches:
            break
        matches = pattern.findall(text)
    if not matches:
        return None
    value, denom = matches[-1]
    top = float(denom) if denom else float(scale)
    if top <= 0 or not 0 <= float(value) <= top:
        return None
    return float(value) / top


class _Judge(Component):
    use: str = "judge"
    """Which configured backend answers (falls back to the default backend)."""
    temperature: float | None = None
    """None: the run's default temperature. Votes differ by sample index, so keep it above 0."""
    max_tokens: int | None = None
    show: Literal["auto", "summary", "short", "text"] = "auto"
    """What the judge sees of a candidate: its rendered summary, its short form ("Final answer: x"
    and a rationale of at most `rationale_tokens`), or its raw text (clipped). `auto`: the short
    form for a short answer (at most 40 characters, in a reply of at most 256 tokens) whose
    summary, if any, no model wrote; else the summary."""
    summary_tokens: int = Field(400, ge=20)
    """Bound on each candidate's rendered text."""
    rationale_tokens: int = Field(RATIONALE_TOKENS, ge=0)
    """Bound on the rationale in the short form."""
    verdict_tokens: int | None = Field(VERDICT_TOKENS, ge=1)
    """When every candidate is shown in short form (or is a short reply) and `max_tokens` is unset: the judge is asked
    for the verdict line alone and its reply is capped at this many tokens (a short answer needs
    no essay to be checked; the reply, not the prompt, was most of a contest's tokens). None:
    the run's max_tokens and the longer instruction."""

    def brief(self, candidate: Candidate) -> bool:
        """Whether a verdict on `candidate` needs no reasoning of the judge's own: it is shown in short
        form, or its reply is short anyway (a short answer the extraction missed)."""
        return self.in_short_form(candidate) or (self.show == "auto" and _plain(candidate)
                                                 and approx_tokens(candidate.text) <= SHORT_REPLY_TOKENS)

    def in_short_form(self, candidate: Candidate) -> bool:
        """Whether the judge sees `candidate` as its short form (see `show`)."""
        return self.show == "short" or (self.show == "auto" and _plain(candidate)
                                        and use_short_form([candidate], "auto"))

    def shown(self, candidate: Candidate) -> str:
        if self.show == "text":
            from tts.summarizers.render import CHARS_PER_TOKEN, clip

            return clip(candidate.text, self.summary_tokens * CHARS_PER_TOKEN)
        if self.in_short_form(candidate):
            why = rationale(candidate.text, candidate.answer, min(self.rationale_tokens, self.summary_tokens))
            answer = candidate.answer if candidate.answer is not None else "(none)"
            return f"Final answer: {answer}" + (f"\nReasoning: {why}" if why else "")
        return summary_text(candidate, self.summary_tokens)

    def params(self, short: bool = False) -> dict:
        """Sampling overrides of a judge call; `short`: every candidate it shows is in short form."""
        out: dict = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        elif short and self.verdict_tokens is not None:
            out["max_tokens"] = self.verdict_tokens
        return out


def _plain(candidate: Candidate) -> bool:
    """No summary, or one no model wrote that holds nothing the short form drops (files, a patch...)."""
    s = candidate.summary
    return s is None or (s.model is None and not (s.hypotheses or s.decisions or s.actions or s.files_changed
                                                   or s.final_patch or s.failure_modes or s.open_questions))


@register
class ListwiseJudge(_Judge):
    """Show the task and k numbered candidates; the judge names the best ("WINNER: i")."""

    kind: Literal["listwise-judge"] = "listwise-judge"

    def is_short(self, shown: list[Candidate]) -> bool:
        """Whether a call over `shown` asks for the verdict line alone (every candidate is brief)."""
        return self.verdict_tokens is not None and all(self.brief(c) for c in shown)

    def prompt(self, task: Task, texts: list[str], short: bool) -> str:
        """The listwise judge prompt over candidates already rendered, in the order shown."""
        return render("judge_listwise.j2", self.prompts, task=task.text, short=short, candidates=texts)

    async def vote(self, task: Task, shown: list[Candidate], ctx: RunContext, *, sample_index: int = 0,
                   role: str = "judge", texts: list[str] | None = None, short: bool | None = None,
                   prompt: str | None = None) -> tuple[int | None, str]:
        """One judge call over `shown` in the given order: (0-based index of the pick or None, raw reply).
        `texts`, `short`, `prompt`: what a caller already rendered or decided for this order (a
        tournament renders each order of a group once, not once per vote)."""
        if short is None:
            short = self.is_short(shown)
        if prompt is None:
            prompt = self.prompt(task, texts if texts is not None else [self.shown(c) for c in shown], short)
        comp = await ctx.complete([{"role": "user", "content": prompt}], role=role, sample_index=sample_index,
                                  use=self.use, **self.params(short))
        return parse_winner(comp.text, len(shown)), comp.text

    async def select(self, task: Task, candidates: list[Candidate], ctx: RunContext, k: int = 1) -> list[Candidate]:
        """One call over all candidates in a seeded random order. The pick comes first, then the
        others in that order. An unparseable reply: the pick is drawn by the seeded RNG and the
        returned candidate carries `metadata["judge_note"]`."""
        if len(candidates) <= 1:
            return list(candidates[:k])
        order = list(candidates)
        rng = ctx.rng("listwise")
        rng.shuffle(order)
        pick, _ = await self.vote(task, order, ctx)
        if pick is None:
            pick = rng.randrange(len(order))
            note = "judge reply unparseable; picked by seeded RNG"
            order[pick] = order[pick].model_copy(update={"metadata": {**order[pick].metadata, "judge_note": note}})
        return [order[pick], *order[:pick], *order[pick + 1:]][:k]


@register
class PointwiseJudge(ScoreSelect, _Judge):
    """Grade each candidate alone, `samples` times; its score is the mean valid grade (0..1).
    A candidate with no parseable grade scores 0."""

    kind: Literal["pointwise-judge"] = "pointwise-judge"
    samples: int = Field(1, ge=1)
    """Grades per candidate (M); all N*M calls run in parallel."""
    scale: int = Field(10, ge=1)

    async def grade(self, task: Task, candidate: Candidate, ctx: RunContext, sample_index: int = 0) -> float | None:
        short = self.verdict_tokens is not None and self.brief(candidate)
        prompt = render("judge_pointwise.j2", self.prompts, task=task.text, candidate=self.shown(candidate),
                        scale=self.scale, short=short)
        comp = await ctx.complete([{"role": "user", "content": prompt}], role="judge", sample_index=sample_index,
                                  use=self.use, **self.params(short))
        return parse_score(comp.text, self.scale)

    async def verdicts(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[list[float | None]]:
        """Per candidate, its `samples` grades (None where unparseable)."""
        flat = await asyncio.gather(*(self.grade(task, c, ctx, j) for c in candidates for j in range(self.samples)))
        m = self.samples
        return [list(flat[i * m:(i + 1) * m]) for i in range(len(candidates))]

    async def score(self, task: Task, candidates: list[Candidate], ctx: RunContext) -> list[float]:
        out = []
        for grades in await self.verdicts(task, candidates, ctx):
            valid = [g for g in grades if g is not None]
            out.append(sum(valid) / len(valid) if valid else 0.0)
        return out

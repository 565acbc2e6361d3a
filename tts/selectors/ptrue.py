"""P(True) (Kadavath et al., "Language Models (Mostly) Know What They Know", 2022): ask the model
whether a proposed answer is correct, "(A) True / (B) False", and score the candidate by the
probability of True (docs/algorithms.md#ptrue).

How the probability is measured (recorded per candidate in `metadata["p_true_method"]`):
- `logprobs`: one greedy call asking for the top logprobs; at the first generated token that
  reads as a verdict ("A", "(A", "True" / "B", "False"), P(True) = p(A) / (p(A) + p(B)) summed over
  the top-logprob entries of each kind (only the chosen token's own logprob when the backend
  sends no alternatives);
- `sampled`: where the backend returns no logprobs, `samples` verdicts sampled at
  `temperature` (default 1.0) and P(True) = the fraction that say True (unparseable verdicts are
  dropped; none parseable scores 0).
`method="auto"` (the default) asks for logprobs for the first candidate and falls back to
sampling for all when the backend returns none; "logprobs" makes their absence a ConfigError.
`show_samples > 0` is the paper's better variant: the prompt first lists that many of the other
candidates' answers ("brainstormed answers"), then the proposed one.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import ConfigError
from tts.prompts import render
from tts.records import Candidate, Task, TokenLogprob
from tts.registry import register
from tts.selectors.annotate import Annotates, with_meta
from tts.selectors.judge import _Judge
from tts.summarizers.render import clip

NO_LOGPROBS = ("p-true with method='logprobs': the backend returned no logprobs; use method='auto' or 'sampled' "
               "(the fraction of True over sampled verdicts)")
_TRUE, _FALSE = {"A", "TRUE"}, {"B", "FALSE"}


def _verdict_of_token(token: str) -> bool | None:
    t = token.strip().strip("()[]*:.'\"").upper()
    return True if t in _TRUE else False if t in _FALSE else None


def p_true_from_logprobs(logprobs: Sequence[TokenLogprob | dict] | None) -> float | None:
    """P(True) at the first verdict token of a reply, or None when no token reads as a verdict."""
    for tok in logprobs or []:
        token = tok.token if isinstance(tok, TokenLogprob) else str(tok.get("token", ""))
        chosen = _verdict_of_token(token)
        if chosen is None:
            continue
        top = (tok.top_logprobs if isinstance(tok, TokenLogprob) else tok.get("top_logprobs")) or []
        mass = {True: 0.0, False: 0.0}
        seen: set[str] = set()
        for entry in top:
            name = str(entry.get("token", "")) if isinstance(entry, dict) else str(getattr(entry, "token", ""))
            lp = entry.get("logprob") if isinstance(entry, dict) else getattr(entry, "logprob", None)
            kind = _verdict_of_token(name)
            if kind is None or lp is None or name in seen or not math.isfinite(lp):
                continue
            seen.add(name)
            mass[kind] += math.exp(lp)
        if mass[True] + mass[False] > 0:
            return mass[True] / (mass[True] + mass[False])
        own = math.exp(tok.logprob if isinstance(tok, TokenLogprob) else float(tok.get("logprob", 0.0)))
        return own if chosen else 1.0 - own
    return None


_VERDICT = re.compile(r"\(\s*([AB])\s*\)|\b(true|false)\b|^\W*([AB])\b", re.I | re.M)


def parse_verdict(text: str) -> bool | None:
    """True for "(A)" / "True" / a leading "A", False for the B / False forms; the first one counts."""
    found = _VERDICT.search(text)
    if found is None:
        return None
    word = next(g for g in found.groups() if g)
    return _verdict_of_token(word)


@register
class PTrue(Annotates, _Judge):
    """Scorer (and top-k selector): the probability the model gives to "the proposed answer is True"."""

    kind: Literal["p-true"] = "p-true"
    method: Literal["auto", "logprobs", "sampled"] = "auto"
    samples: int = Field(8, ge=1)
    """Verdicts sampled per candidate when there are no logprobs."""
    show_samples: int = Field(0, ge=0)
    """How many other candidates' answers to show first (0: the plain variant)."""
    top_logprobs: int = Field(20, ge=1, le=20)
    verdict_tokens: int = Field(5, ge=1)
    """max_tokens of a verdict call (the verdict may follow an opening parenthesis or a space)."""

    def _prompt(self, task: Task, candidate: Candidate, others: list[Candidate]) -> str:
        shown = [c.answer if c.answer is not None else clip(c.text, 300) for c in others[:self.show_samples]]
        return render("p_true.j2", self.prompts, task=task.text, proposed=self.shown(candidate), samples=shown)

    def _others(self, candidates: list[Candidate], i: int, ctx: RunContext) -> list[Candidate]:
        if not self.show_samples:
            return []
        others = [c for j, c in enumerate(candidates) if j != i]
        ctx.rng(f"p-true/{i}").shuffle(others)
        return others

    async def _by_logprobs(self, prompt: str, ctx: RunContext) -> tuple[float | None, bool]:
        """(P(True) or None, whether the backend returned logprobs at all)."""
        comp = await ctx.complete([{"role": "user", "content": prompt}], role="p-true", use=self.use,
                                  temperature=0.0, max_tokens=self.verdict_tokens, logprobs=True,
                                  top_logprobs=self.top_logprobs)
        return p_true_from_logprobs(comp.logprobs), bool(comp.logprobs)

    async def _by_sampling(self, prompt: str, ctx: RunContext) -> tuple[float, int]:
        temperature = self.temperature if self.temperature is not None else 1.0
        comps = await ctx.sample([{"role": "user", "content": prompt}], self.samples, role="p-true", start=1,
                                 use=self.use, temperature=temperature,
                                 max_tokens=self.max_tokens or self.verdict_tokens)
        verdicts = [v for v in (parse_verdict(c.text) for c in comps) if v is not None]
        return (sum(verdicts) / len(verdicts) if verdicts else 0.0), len(verdicts)

    async def _one(self, task: Task, candidates: list[Candidate], i: int, ctx: RunContext,
                   method: str) -> tuple[Candidate, bool]:
        """The i-th candidate scored, and whether the backend gave logprobs."""
        c = candidates[i]
        sub = ctx.child("p-true", replica=i)
        prompt = self._prompt(task, c, self._others(candidates, i, ctx))
        had_logprobs = method != "sampled"
        if method != "sampled":
            p, had_logprobs = await self._by_logprobs(prompt, sub)
            if not had_logprobs and method == "logprobs":
                raise ConfigError(NO_LOGPROBS)
            if p is not None:
                return with_meta(c, p, p_true=p, p_true_method="logprobs"), True
        p, valid = await self._by_sampling(prompt, sub)
        note = {} if not had_logprobs or method == "sampled" else {"p_true_note": "no verdict token in the logprobs"}
        return with_meta(c, p, p_true=p, p_true_method="sampled", p_true_verdicts=valid, **note), had_logprobs

    async def annotate(self, task: Task, candidates: list[Candidate], ctx: RunContext | None) -> list[Candidate]:
        if not candidates:
            return []
        if ctx is None:
            raise ConfigError("p-true calls the model: it needs a run context")
        first, had_logprobs = await self._one(task, candidates, 0, ctx, self.method)
        method = self.method if had_logprobs or self.method != "auto" else "sampled"
        rest = await asyncio.gather(*(self._one(task, candidates, i, ctx, method) for i in range(1, len(candidates))))
        return [first, *(c for c, _ in rest)]

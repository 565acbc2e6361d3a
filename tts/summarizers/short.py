"""The no-model summarizer for short answers: final answer, trimmed rationale, last lines quoted;
and the compact "short form" of a short-answer reply (its answer plus a short rationale) that
judges, PDR workspaces and sequential refinement show instead of the whole reply."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from tts.answers import check_format, extract_answer, normalize
from tts.context import RunContext
from tts.records import Candidate, Evidence, Task, TrajectorySummary
from tts.registry import Component, register
from tts.summarizers.render import CHARS_PER_TOKEN, approx_tokens, clip, render_summary


@register
class ShortSummarizer(Component):
    """No model call. `final_answer` from the candidate (or extracted from its text), the start of
    the text as `approach`, its last non-empty lines quoted as evidence; bounded to `max_tokens`."""

    kind: Literal["short-summary"] = "short-summary"
    max_tokens: int = Field(300, ge=20)
    """Bound on the rendered summary."""
    evidence_lines: int = Field(2, ge=0)
    """How many of the last non-empty lines to quote."""
    answer_format: str = "auto"

    @field_validator("answer_format")
    @classmethod
    def _valid_format(cls, v: str) -> str:
        return check_format(v)

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext | None = None) -> TrajectorySummary:
        return self.summarize_now(candidate)

    def summarize_now(self, candidate: Candidate) -> TrajectorySummary:
        """The same, synchronously (it needs no model)."""
        text = candidate.text.strip()
        answer = candidate.answer if candidate.answer is not None else extract_answer(text, self.answer_format)
        budget = self.max_tokens * CHARS_PER_TOKEN
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        tail = lines[-self.evidence_lines:] if self.evidence_lines else []
        quote_chars = max(40, budget // 6)
        evidence = [Evidence(kind="output", quote=clip(ln, quote_chars)) for ln in tail]
        used = sum(len(e.quote) + 12 for e in evidence) + len(str(answer)) + 40
        summary = TrajectorySummary(
            source_id=candidate.id,
            approach=clip(" ".join(lines[:len(lines) - len(tail)] or lines), max(40, budget - used)),
            evidence=evidence,
            final_answer=answer,
            status_claim=f"final answer {answer}" if answer is not None else "no final answer given",
        )
        return summary.model_copy(update={"length_tokens": approx_tokens(render_summary(summary, self.max_tokens))})


def short_summary(candidate: Candidate, max_tokens: int = 300) -> TrajectorySummary:
    """The no-model summary of one candidate."""
    return ShortSummarizer(max_tokens=max_tokens).summarize_now(candidate)


def summary_text(candidate: Candidate, max_tokens: int = 400) -> str:
    """What a judge sees for `candidate`: its summary rendered, or the no-model summary when it has none."""
    summary = candidate.summary if candidate.summary is not None else short_summary(candidate, max_tokens)
    return render_summary(summary, max_tokens)


SHORT_ANSWER_CHARS = 40
"""An answer this long or shorter, on one line, is a short answer (a number, a word, a choice)."""
SHORT_REPLY_TOKENS = 256
"""`show="auto"` uses the short form for replies up to this long; longer ones are shown whole."""
RATIONALE_TOKENS = 32
"""Default bound on the rationale in a short form: enough for "7 + 7 = 14", not for a derivation."""
_ANSWER_LINE = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:=]?\s*", re.I)


def is_short_answer(answer: str | None) -> bool:
    return answer is not None and 0 < len(answer) <= SHORT_ANSWER_CHARS and "\n" not in answer


def use_short_form(candidates: list[Candidate], show: str) -> bool:
    """Whether to show `candidates` in short form: `show` is "short", or "auto" and every one has
    a short answer and a short reply (a long derivation is shown whole, as the papers do)."""
    if show != "auto":
        return show == "short"
    return bool(candidates) and all(c.metadata.get("structured") or (  # a tool call or JSON: its answer is its all
        is_short_answer(c.answer) and approx_tokens(c.text) <= SHORT_REPLY_TOKENS) for c in candidates)


def rationale(text: str, answer: str | None, max_tokens: int = RATIONALE_TOKENS) -> str:
    """The reasoning of a short-answer reply: its lines without the ones that only state the answer
    ("Answer: 14", "14"), joined on one line and cut to `max_tokens` (head and tail kept)."""
    kept = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        rest = _ANSWER_LINE.sub("", line, count=1)
        if answer is not None and normalize(rest) == answer:
            continue  # the answer restated: shown once, as the answer
        kept.append(line)
    return clip(" ".join(kept), max_tokens * CHARS_PER_TOKEN) if max_tokens > 0 else ""


def short_form(candidate: Candidate, max_tokens: int = RATIONALE_TOKENS) -> str:
    """A short-answer reply as its rationale (at most `max_tokens`) then one line "Answer: x"; a tool
    call or a JSON answer as itself (`get_weather({"city":"Paris"})`), what the model would say again."""
    if candidate.metadata.get("structured") and candidate.answer is not None:
        return candidate.answer
    why = rationale(candidate.text, candidate.answer, max_tokens)
    return f"{why}\nAnswer: {candidate.answer}" if why else f"Answer: {candidate.answer}"

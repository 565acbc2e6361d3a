"""The no-model summarizer for short answers: final answer, trimmed rationale, last lines quoted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tts.answers import check_format, extract_answer
from tts.context import RunContext
from tts.records import Candidate, Evidence, Task, TrajectorySummary
from tts.selectors.registry import Component, register_component
from tts.summarizers.render import CHARS_PER_TOKEN, approx_tokens, clip, render_summary


@register_component
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

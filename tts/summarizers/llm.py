"""The LLM summarizer: asks the model for a `TrajectorySummary` as JSON, validated by pydantic.

A bad reply is repaired (code fences stripped, the outermost {...} extracted, evidence given as
plain strings wrapped, unknown keys dropped); if it still does not validate, the model is asked
once more with the error; if that fails too, the no-model summary is used. Inputs are clipped
before sending, lists and strings are capped after, and evidence quotes that do not occur in the
attempt are dropped (quoted, not paraphrased: summary hallucination is the method's weak point).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, ValidationError

from tts.context import RunContext
from tts.errors import ParseError
from tts.prompts import render
from tts.records import Candidate, Message, Task, TrajectorySummary, Usage
from tts.registry import Component, register
from tts.summarizers.render import CHARS_PER_TOKEN, approx_tokens, clip, render_summary
from tts.summarizers.short import ShortSummarizer

_MODEL_FIELDS = ("hypotheses", "approach", "decisions", "actions", "files_changed", "evidence", "progress",
                 "failure_modes", "open_questions", "final_answer", "final_patch", "status_claim")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


def _outermost_object(text: str) -> str | None:
    start = text.find("{")
    end = text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else None


def parse_summary_json(text: str, source_id: str) -> TrajectorySummary:
    """A summary from a model reply, repairing what can be repaired; ParseError naming the problem."""
    body = text.strip()
    fenced = _FENCE.search(body)
    if fenced:
        body = fenced.group(1).strip()
    obj = _outermost_object(body)
    if obj is None:
        if "{" in body:
            raise ParseError("invalid JSON: the object is never closed (was the reply cut off?)")
        raise ParseError("no JSON object in the reply")
    try:
        data = json.loads(obj)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ParseError("the JSON is not an object")
    data = {k: v for k, v in data.items() if k in _MODEL_FIELDS}
    if isinstance(data.get("evidence"), list):
        data["evidence"] = [{"quote": e} if isinstance(e, str) else e for e in data["evidence"]]
    if isinstance(data.get("final_answer"), int | float):
        data["final_answer"] = str(data["final_answer"])
    try:
        return TrajectorySummary(source_id=source_id, **data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ParseError(f"field '{loc}': {err['msg']}") from None


def squash(s: str) -> str:
    """Whitespace folded, for checking that a quote occurs in its source."""
    return re.sub(r"\s+", " ", s).strip()


async def ask_summary(ctx: RunContext, messages: list[Message], source_id: str, *, use: str, params: dict[str, Any],
                      tries: int, prompts: dict[str, str], first_index: int = 0
                      ) -> tuple[TrajectorySummary | None, Usage, str | None, int]:
    """Ask for a summary as JSON up to `tries` times, each re-ask showing the parse error (`summarize_retry.j2`).
    Returns the parsed summary (None when no reply could be repaired), the usage and model of the replies, and
    the number of replies. The one model-call loop of the LLM summarizers (`LLMSummarizer`, the swe layer's
    `LLMTrajectorySummary`); a backend error propagates."""
    usage, model = Usage(), None
    for i in range(first_index, first_index + tries):
        comp = await ctx.complete(messages, role="summarize", sample_index=i, use=use, **params)
        usage, model = usage + comp.usage, comp.model
        try:
            return parse_summary_json(comp.text, source_id), usage, model, i - first_index + 1
        except ParseError as exc:
            messages = [*messages, Message(role="assistant", content=comp.text),
                        Message(role="user", content=render("summarize_retry.j2", prompts, error=str(exc)))]
    return None, usage, model, tries


class ModelSummarizer(Component):
    """What every LLM summarizer is configured with (this one and the swe layer's `LLMTrajectorySummary`)."""

    use: str = "summarizer"
    """Which configured backend answers (falls back to the default backend)."""
    temperature: float | None = 0.0
    max_tokens: int | None = 800
    max_items: int = Field(6, ge=1)
    """Cap on every list field."""
    max_item_chars: int = Field(300, ge=20)
    """Cap on every string (lists' items, evidence quotes, approach, progress, ...)."""
    retries: int = Field(1, ge=0)
    """Re-asks after a reply that cannot be repaired, each showing the error."""

    def call_params(self, max_tokens: int | None) -> dict[str, Any]:
        return {k: v for k, v in (("temperature", self.temperature), ("max_tokens", max_tokens)) if v is not None}


@register
class LLMSummarizer(ModelSummarizer):
    """Summarize an attempt with a model call (`use="summarizer"`, else the default backend)."""

    kind: Literal["llm-summary"] = "llm-summary"
    max_input_tokens: int = Field(3000, ge=100)
    """The attempt is clipped (head and tail kept) to this before sending."""
    max_tokens_rendered: int = Field(500, ge=50)
    """Bound used for `length_tokens` and by readers that render it."""
    verify_quotes: bool = True
    """Drop evidence whose quote does not occur (whitespace-insensitively) in the attempt."""
    fallback: ShortSummarizer = Field(default_factory=ShortSummarizer)

    async def summarize(self, task: Task, candidate: Candidate, ctx: RunContext) -> TrajectorySummary:
        attempt = clip(candidate.text, self.max_input_tokens * CHARS_PER_TOKEN)
        prompt = render("summarize.j2", self.prompts, task=clip(task.text, 2000), attempt=attempt,
                        max_items=self.max_items)
        messages = [Message(role="user", content=prompt)]
        summary, usage, model, _ = await ask_summary(ctx, messages, candidate.id, use=self.use,
                                                     params=self.call_params(self.max_tokens),
                                                     tries=self.retries + 1, prompts=self.prompts)
        if summary is not None:
            return self._bound(summary, candidate).model_copy(update={"usage": usage, "model": model})
        return self.fallback.summarize_now(candidate).model_copy(update={"usage": usage})

    def _bound(self, s: TrajectorySummary, candidate: Candidate) -> TrajectorySummary:
        cap, n = self.max_item_chars, self.max_items
        source = squash(candidate.text)
        evidence = [e for e in s.evidence if not self.verify_quotes or squash(e.quote) in source]
        update: dict[str, Any] = {
            name: [clip(x, cap) for x in getattr(s, name)][:n]
            for name in ("hypotheses", "decisions", "actions", "files_changed", "failure_modes", "open_questions")
        }
        update.update(
            approach=clip(s.approach, cap * 2), progress=clip(s.progress, cap), status_claim=clip(s.status_claim, cap),
            evidence=[e.model_copy(update={"quote": clip(e.quote, cap)}) for e in evidence][:n],
        )
        if s.final_answer is None and candidate.answer is not None:
            update["final_answer"] = candidate.answer
        out = s.model_copy(update=update)
        return out.model_copy(update={"length_tokens": approx_tokens(render_summary(out, self.max_tokens_rendered))})

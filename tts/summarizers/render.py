"""Render a `TrajectorySummary` as compact text for a prompt, within a token bound."""

from __future__ import annotations

import math

from tts.records import TrajectorySummary

CHARS_PER_TOKEN = 4
"""The rough ratio used for every length bound in summaries (no tokenizer needed)."""


def approx_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def clip(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars`, keeping head and tail, with a marker where it was cut."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    if max_chars < 40:
        return text[:max_chars]
    head = (max_chars - 7) * 2 // 3
    tail = max_chars - 7 - head
    return f"{text[:head]} [...] {text[-tail:]}" if tail > 0 else text[:max_chars]


def render_summary(summary: TrajectorySummary, max_tokens: int = 400) -> str:
    """Compact text: one labelled line or list per non-empty field, most decisive first
    (final answer, status, evidence), cut to `max_tokens` (approximate)."""
    lines: list[str] = []
    if summary.final_answer is not None:
        lines.append(f"Final answer: {summary.final_answer}")
    if summary.status_claim:
        lines.append(f"Claims: {summary.status_claim}")
    if summary.approach:
        lines.append(f"Approach: {summary.approach}")
    for label, items in (("Hypotheses", summary.hypotheses), ("Decisions", summary.decisions),
                         ("Actions", summary.actions), ("Files changed", summary.files_changed)):
        if items:
            lines.append(f"{label}:")
            lines.extend(f"- {x}" for x in items)
    if summary.evidence:
        lines.append("Evidence (quoted):")
        for ev in summary.evidence:
            code = f" exit={ev.exit_code}" if ev.exit_code is not None else ""
            lines.append(f"- [{ev.kind}{code}] {ev.quote}")
    if summary.progress:
        lines.append(f"Progress: {summary.progress}")
    for label, items in (("Failure modes", summary.failure_modes), ("Open questions", summary.open_questions)):
        if items:
            lines.append(f"{label}:")
            lines.extend(f"- {x}" for x in items)
    if summary.final_patch:
        lines.append("Patch:")
        lines.append(summary.final_patch)
    text = "\n".join(lines) if lines else "(empty summary)"
    return clip(text, max_tokens * CHARS_PER_TOKEN)

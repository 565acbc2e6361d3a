"""What an agent is shown of earlier attempts: their summaries, rendered by a template."""

from __future__ import annotations

from collections.abc import Sequence

from tts.prompts import render
from tts.records import TrajectorySummary
from tts.summarizers.render import render_summary

PRIOR_BLOCK = "\n{% if prior is defined %}\n<prior_attempts>\n{{ prior }}\n</prior_attempts>\n{% endif %}\n"
"""Where `prior` goes in an agent's instance template (right after the issue, in mini-swe-agent's)."""


def render_prior(summaries: Sequence[TrajectorySummary], prompts: dict[str, str] | None = None,
                 summary_tokens: int = 1500) -> str:
    """The text an agent sees about earlier attempts (template `swe_prior.j2`)."""
    return render("swe_prior.j2", prompts, summaries=[render_summary(s, summary_tokens) for s in summaries])

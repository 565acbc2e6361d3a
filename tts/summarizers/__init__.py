"""Summarizers: turn an attempt into the shared bounded `TrajectorySummary` (docs/algorithms.md#trajectory-summary).

Importing this package registers the built-in summarizers in `tts.registry`.
"""

from tts.summarizers.llm import LLMSummarizer, parse_summary_json
from tts.summarizers.render import approx_tokens, render_summary
from tts.summarizers.short import ShortSummarizer, short_summary, summary_text

__all__ = [
    "LLMSummarizer", "ShortSummarizer", "approx_tokens", "parse_summary_json", "render_summary", "short_summary",
    "summary_text",
]

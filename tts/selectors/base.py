"""The selector, scorer and summarizer contracts (defined in `tts.contracts`, re-exported here)."""

from tts.contracts import Scorer, Selector, Summarizer

__all__ = ["Scorer", "Selector", "Summarizer"]

"""Self-consistency: N samples in parallel, majority (or weighted) vote over normalized answers.

A preset of generate-then-select (`tts.strategies.generate_select`) whose selector is a vote
(`tts.selectors.vote`). With `early_stop` the N samples are drawn in waves and the vote ends as
soon as more samples would not change its winner (1.0, lossless) or very probably would not
(p < 1); see `tts.selectors.early_stop`. With `confidence_keep` only the most self-certain samples vote
(DeepConf-style filter on the logprobs' self-certainty, `tts.selectors.certainty`).

With `consensus`, DeepConf's online stop (`tts.selectors.confidence_gate`).

Shortcut keywords, handed to the vote: `weighted_by` ("none" | "score": weight each vote by the
candidate's score), `early_stop`, `wave`, `max_weight`, `confidence_keep`, `consensus`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from tts.errors import ConfigError
from tts.registry import SelectorField, register
from tts.selectors.vote import MajorityVote
from tts.strategies.generate_select import GenerateSelect, preset_selector


@register
class SelfConsistency(GenerateSelect):
    kind: Literal["self-consistency"] = "self-consistency"
    selector: SelectorField = Field(default_factory=MajorityVote)
    """The vote: `majority` or `weighted-vote` (with its early stop and confidence filter)."""

    shortcuts: ClassVar[tuple[str, ...]] = ("weighted_by", "early_stop", "wave", "max_weight", "confidence_keep",
                                            "consensus")
    select_context: ClassVar[str | None] = None
    selector_kinds: ClassVar[tuple[str, ...]] = ("majority", "weighted-vote")
    """Self-consistency is a vote; any other selector is best-of-n or generate-select."""

    @field_validator("selector")
    @classmethod
    def _a_vote(cls, v: Any) -> Any:
        if getattr(v, "kind", None) not in cls.selector_kinds:
            raise ConfigError(f"self-consistency: field 'selector': {getattr(v, 'kind', type(v).__name__)!r} is not "
                              f"a vote (allowed: {', '.join(cls.selector_kinds)}); for another selector use "
                              f"best-of-n or generate-select")
        return v

    @classmethod
    def selector_from(cls, given: dict[str, Any], selector: Any) -> Any:
        weighted_by = given.pop("weighted_by", "none")
        if weighted_by not in ("none", "score"):
            raise ConfigError(f"self-consistency: field 'weighted_by': {weighted_by!r} is not allowed "
                              f"(allowed: 'none', 'score')")
        if weighted_by == "none":
            given.pop("max_weight", None)  # only a weighted vote has a weight to bound
            return preset_selector("majority", given, selector)
        return preset_selector("weighted-vote", given, selector)

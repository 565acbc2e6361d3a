"""Self-consistency: N samples in parallel, majority (or weighted) vote over normalized answers.

A preset of generate-then-select (`tts.strategies.generate_select`) whose selector is a vote
(`tts.selectors.vote`). With `early_stop` the N samples are drawn in waves and the vote ends as
soon as more samples would not change its winner (1.0, lossless) or very probably would not
(p < 1); see `tts.selectors.early_stop`. With `confidence_keep` only the most self-certain samples vote
(DeepConf-style filter on the logprobs' self-certainty, `tts.selectors.certainty`).

With `consensus`, DeepConf's online stop on whole replies (`tts.selectors.confidence_gate`).
With `deepconf="low"|"high"`, DeepConf online as the paper defines it: traces are streamed and
stopped the moment their window confidence falls below the warm-up's threshold
(`tts.strategies.deepconf_online`).

Shortcut keywords, handed to the vote: `weighted_by` ("none" | "score": weight each vote by the
candidate's score), `early_stop`, `wave`, `max_weight`, `confidence_keep`, `consensus`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import RunResult, Task
from tts.registry import SelectorField, register
from tts.selectors.vote import MajorityVote
from tts.strategies.generate_select import GenerateSelect, preset_selector


@register
class SelfConsistency(GenerateSelect):
    kind: Literal["self-consistency"] = "self-consistency"
    selector: SelectorField = Field(default_factory=MajorityVote)
    """The vote: `majority` or `weighted-vote` (with its early stop and confidence filter)."""

    deepconf: Literal["low", "high"] | None = None
    """DeepConf online (tts.strategies.deepconf_online): "low" keeps the top 10% of traces by
    confidence, "high" the top 90%; later traces are streamed and stopped below the threshold."""
    window: int = Field(2048, ge=1)
    """DeepConf's sliding window, in tokens (shorter for short answers: a tenth of the warm-up's median length)."""
    warmup: int | None = Field(None, ge=1)
    """DeepConf's warm-up traces, drawn whole to set the threshold (None: n/8, at least 2)."""
    parallel: int | None = Field(None, ge=1)
    """DeepConf's streamed traces in flight at once (None: as many as the warm-up)."""
    deepconf_tau: float = Field(0.95, gt=0.5, le=1)
    """DeepConf's consensus: stop once the leading answer holds this share of the vote weight."""

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

    @model_validator(mode="after")
    def _deepconf_samples(self) -> SelfConsistency:
        if self.deepconf is not None and getattr(self.generator, "kind", None) != "single":
            raise ConfigError(f"self-consistency: deepconf streams single samples; it cannot stop traces of the "
                              f"generator {getattr(self.generator, 'kind', '?')!r} (drop deepconf or the generator)")
        return self

    async def solve(self, task: Task, ctx: RunContext) -> RunResult:
        if self.deepconf is None:
            return await super().solve(task, ctx)
        from tts.strategies.deepconf_online import deepconf_online

        return await deepconf_online(self, task, ctx)

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

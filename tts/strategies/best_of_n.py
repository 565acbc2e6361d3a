"""Best-of-N: N candidates in parallel, the best one by a scorer (max score) or a selector.

A preset of generate-then-select (`tts.strategies.generate_select`): `scorer=` is a shortcut for
`selector=TopScore(scorer=...)`; any scorer given as the selector becomes that too.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from tts.context import RunContext
from tts.errors import ConfigError
from tts.records import Candidate
from tts.registry import SelectorField, register
from tts.selectors.annotate import TopScore
from tts.selectors.selection import Selection
from tts.strategies.generate_select import GenerateSelect


@register
class BestOfN(GenerateSelect):
    kind: Literal["best-of-n"] = "best-of-n"
    selector: SelectorField = Field(default_factory=TopScore)
    """Picks the best candidate: a scorer (a verifier, a pointwise judge, ...; the highest score
    wins), a listwise judge, RTV, ... Default: the candidates' own scores (a nested best-of-n's)."""

    shortcuts: ClassVar[tuple[str, ...]] = ("scorer",)

    @classmethod
    def selector_from(cls, given: dict[str, Any], selector: Any) -> Any:
        if selector is not None and given.get("scorer") is not None:
            raise ConfigError("best-of-n: give either 'scorer' or 'selector', not both")
        return TopScore(scorer=given["scorer"]) if given.get("scorer") is not None else selector

    def metadata(self, selection: Selection) -> dict[str, Any]:
        return {"scores": [c.score for c in selection.candidates], **selection.metadata}

    def pick_partial(self, candidates: list[Candidate], ctx: RunContext) -> list[Candidate]:
        """Stopped before (or while) scoring: the best score so far, ties (and no scores) by seed."""
        return TopScore().pick_partial(candidates, ctx)

"""Selectors (pick k of N), scorers (a score per candidate) and their configs.

Importing this package registers every built-in selector with `tts.selectors.registry`.
"""

from tts.selectors.base import Scorer, Selector, Summarizer
from tts.selectors.confidence import ConfidenceVote, SelfCertainty, borda_weights, self_certainty
from tts.selectors.judge import ListwiseJudge, PointwiseJudge, parse_score, parse_winner
from tts.selectors.pessimistic import PessimisticVerification, pessimistic_scores
from tts.selectors.registry import (
    Component,
    ScorerField,
    SelectorField,
    SummarizerField,
    component_from_spec,
    component_kinds,
    register_component,
)
from tts.selectors.rtv import RTV, Tournament
from tts.selectors.verifier import Verifier, check_expression, safe_eval
from tts.selectors.vote import MajorityVote, WeightedVote, majority, rank_by_answer, top_k_by_score, vote, vote_tally

__all__ = [
    "RTV", "Component", "ConfidenceVote", "ListwiseJudge", "MajorityVote", "PessimisticVerification",
    "PointwiseJudge", "Scorer", "ScorerField", "Selector", "SelectorField", "SelfCertainty", "Summarizer",
    "SummarizerField", "Tournament", "Verifier", "WeightedVote", "borda_weights", "check_expression",
    "component_from_spec", "component_kinds", "majority", "parse_score", "parse_winner", "pessimistic_scores",
    "rank_by_answer", "register_component", "safe_eval", "self_certainty", "top_k_by_score", "vote", "vote_tally",
]

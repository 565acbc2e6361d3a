"""Selectors (pick k of N), scorers (a score per candidate) and their configs.

Importing this package registers every built-in selector in `tts.registry`.
"""

from tts.contracts import Scorer, Selector, Summarizer
from tts.registry import Component, ScorerField, SelectorField, SummarizerField, component_from_spec
from tts.selectors.annotate import TopScore
from tts.selectors.b4 import B4, b4_rank, b4_scores, max_pass_rank
from tts.selectors.certainty import self_certainty
from tts.selectors.code_tests import TestGenerator, TestsVerifier, parse_tests
from tts.selectors.confidence import ConfidenceVote, SelfCertainty, borda_weights
from tts.selectors.judge import ListwiseJudge, PointwiseJudge, parse_score, parse_winner
from tts.selectors.pessimistic import PessimisticVerification, pessimistic_scores
from tts.selectors.ptrue import PTrue, p_true_from_logprobs, parse_verdict
from tts.selectors.rpc import RPC, fit_weibull_mixture, path_probability, prune_mask, rpc_weights
from tts.selectors.tournament import RTV, Tournament
from tts.selectors.verifier import Verifier, check_expression, safe_eval
from tts.selectors.vote import MajorityVote, WeightedVote, rank_by_answer, top_k_by_score, vote, vote_tally

__all__ = [
    "RTV",
    "Component",
    "ConfidenceVote",
    "ListwiseJudge",
    "MajorityVote",
    "PessimisticVerification",
    "PointwiseJudge",
    "Scorer",
    "ScorerField",
    "Selector",
    "SelectorField",
    "SelfCertainty",
    "Summarizer",
    "SummarizerField",
    "TopScore",
    "Tournament",
    "Verifier",
    "WeightedVote",
    "borda_weights",
    "check_expression",
    "component_from_spec",
    "parse_score",
    "parse_winner",
    "pessimistic_scores",
    "rank_by_answer",
    "safe_eval",
    "self_certainty",
    "top_k_by_score",
    "vote",
    "vote_tally",
]
__all__ += [  # P(True), RPC, B4 and code tests (issue 15)
    "B4", "RPC", "PTrue", "TestGenerator", "TestsVerifier", "b4_rank", "b4_scores", "fit_weibull_mixture",
    "max_pass_rank", "p_true_from_logprobs", "parse_tests", "parse_verdict", "path_probability", "prune_mask",
    "rpc_weights",
]

"""Built-in strategies. Importing this package registers each in `tts.registry`."""

from tts.strategies.best_of_n import BestOfN
from tts.strategies.conjectures import ConjectureExtraction
from tts.strategies.generate_select import GenerateSelect
from tts.strategies.pdr import ParallelDistillRefine
from tts.strategies.refine import SequentialRefinement
from tts.strategies.rtv import TournamentVoting
from tts.strategies.self_consistency import SelfConsistency
from tts.strategies.single import SingleSample
from tts.strategies.solver_grader import SolverGrader

__all__ = ["BestOfN", "ConjectureExtraction", "GenerateSelect", "ParallelDistillRefine", "SelfConsistency",
           "SequentialRefinement", "SingleSample", "SolverGrader", "TournamentVoting"]

"""Built-in strategies. Importing this package registers each with `tts.spec`."""

from tts.strategies.self_consistency import SelfConsistency
from tts.strategies.single import SingleSample

__all__ = ["SelfConsistency", "SingleSample"]

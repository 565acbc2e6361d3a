"""Experiments: compare strategies and budgets on your model and tasks.

    cmp = await tts.compare("tasks.jsonl", [{"kind": "single"}, {"kind": "self-consistency", "n": [4, 8, 16]}],
                            backend, out="runs/sc")
    cmp            # a table in Jupyter (and the accuracy-vs-tokens plot)

`tts compare TASKS --model M --grid GRID.yaml --out DIR` is the same from the command line.
"""

from tts.experiments.grid import Config, expand_grid, load_grid
from tts.experiments.runner import compare, compare_sync
from tts.experiments.table import Comparison

__all__ = ["Comparison", "Config", "compare", "compare_sync", "expand_grid", "load_grid"]

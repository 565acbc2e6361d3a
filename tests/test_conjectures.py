"""Conjecture extraction: detachment as a property, the outcome truth table, lemma memory and
de-duplication, the context-free final solver, exact call counts per phase, repair of bad
extractor JSON, nesting; and an end-to-end run on the embedded model (marked local_model)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from tts.errors import ConfigError, ParseError
from tts.records import Task
from tts.spec import strategy_from_spec
from tts.strategies.conjectures import (
    Conjecture,
    ConjectureExtraction,
    ConjectureOutcome,
    LemmaMemory,
    normalize_statement,
    outcome_status,
    parse_extraction,
)
from tts.testing import ScriptedBackend, request_text

PROBLEM = "PROBLEM-MARK-z3: prove that every FROBNITZ of order n has a fixed point."
MARKERS = ("PROBLEM-MARK", "FROBNITZ", "ATTEMPT-MARK", "REPORT-MARK", "ASSUMED-MARK")

CLAIMS = {  # statement -> (grade of its proof, grade of its negation's proof)
    "Every prime p > 2 is odd.": (7, 1),          # proven
    "Every prime is even.": (1, 6),               # disproved
    "The integer 1 equals the integer 2.": (6, 6),  # conflict
    "Every even integer > 2 is a sum of two primes.": (2, 2),  # open
}


def negation(s: str) -> str:
    return f"It is not true that: {s}"


def last_user(req) -> str:
    return next(m.content for m in reversed(req.messages) if m.role == "user")


def kind_of(req) -> str:
    last = last_user(req)
    if last.startswith("Prove the following statement"):
        return "conjecture-solve"
    if "## Proof to grade" in last:
        return "conjecture-grade"
    if "Reply with one JSON object only" in last or "could not be used" in last:
        return "extract"
    if "## Solution to grade" in last:
        return "grade"
    return "solver"


def make_script(claims=CLAIMS, solution_grade=3, extraction=None):
    """A model that is a solver, a grader, an extractor and a conjecture prover, by prompt."""
    n = {"attempt": 0}
    extraction = extraction or json.dumps({
        "conjectures": [{"statement": s, "negation": negation(s)} for s in claims],
        "solution": "ASSUMED-MARK: by the conjectures, done."})

    def grade_of_statement(statement: str) -> int:
        for s, (g, ng) in claims.items():
            if statement == s:
                return g
            if statement == negation(s):
                return ng
        raise AssertionError(f"unexpected statement {statement!r}")

    def reply(req):
        last = last_user(req)
        kind = kind_of(req)
        if kind == "conjecture-solve":
            return "Proof sketch: it follows."
        if kind == "conjecture-grade":
            statement = last.split("## Statement\n", 1)[1].split("\n\n## Proof to grade", 1)[0].strip()
            return f"Checked.\nFinal Grade: {grade_of_statement(statement)}/7"
        if kind == "extract":
            return extraction if isinstance(extraction, str) else extraction(req)
        if kind == "grade":
            g = solution_grade(req) if callable(solution_grade) else solution_grade
            return f"REPORT-MARK: step 2 is a gap.\nFinal Grade: {g}/7"
        n["attempt"] += 1
        return f"ATTEMPT-MARK-{n['attempt']}: a partial proof."

    return reply


def roles(result) -> Counter:
    return Counter(r.role for r in result.trace)


def small(**kw) -> ConjectureExtraction:
    base = dict(solvers=2, rounds=0, confirmations=3, loops=1, final_solvers=3)
    return ConjectureExtraction(**{**base, **kw})


# -- detachment -------------------------------------------------------------------------------------
async def test_detachment_no_verification_request_sees_problem_attempt_or_report():
    backend = ScriptedBackend(make_script())
    res = await small(loops=2, rounds=1).run(Task(id="t", prompt=PROBLEM), backend)
    verification = [r for r in backend.requests if kind_of(r).startswith("conjecture-")]
    traced = [r for r in res.trace if r.role.startswith("conjecture-")]
    # loop 1: 4 claims x (statement, negation) x (prove, grade); loop 2: only the open claim again
    assert len(verification) == len(traced) == 16 + 4
    for req in verification:
        text = request_text(req)
        assert len(req.messages) == 1, "a verification request is a fresh one-message conversation"
        for marker in MARKERS:
            assert marker not in text, f"{marker} leaked into a verification request"
    # stronger than markers: no 20-character window of the problem, an attempt or a report
    attempts = res.metadata["attempts"]
    # (the extractor's assumed solution quotes the proven claims by design: its marker is checked above)
    sources = [PROBLEM] + [a["text"] for a in attempts if not a["phase"].endswith("-assumed")]
    sources += [a["report"] for a in attempts]
    windows = {src[i:i + 20] for src in sources for i in range(max(1, len(src) - 19))}
    assert len(windows) > 50
    for req in verification:
        text = request_text(req)
        assert [w for w in windows if w in text] == []
    # positive control: the markers did reach the requests that should see them
    extract = [r for r in backend.requests if kind_of(r) == "extract"]
    assert all(m in request_text(extract[0]) for m in ("PROBLEM-MARK", "ATTEMPT-MARK", "REPORT-MARK"))
    # each verification request holds its one statement and nothing from the other claims
    for req in verification:
        text = request_text(req)
        present = [s for s in CLAIMS if s in text]
        assert len(present) == 1


# -- outcomes ---------------------------------------------------------------------------------------
def test_truth_table():
    assert outcome_status(True, False) == "proven"
    assert outcome_status(False, True) == "disproved"
    assert outcome_status(True, True) == "conflict"
    assert outcome_status(False, False) == "open"


async def test_outcomes_and_lemma_memory_from_scripted_graders():
    backend = ScriptedBackend(make_script())
    res = await small().run(Task(id="t", prompt=PROBLEM), backend)
    (loop,) = res.metadata["loops"]
    status = {o["statement"]: o["status"] for o in loop["outcomes"]}
    assert status == {"Every prime p > 2 is odd.": "proven", "Every prime is even.": "disproved",
                      "The integer 1 equals the integer 2.": "conflict",
                      "Every even integer > 2 is a sum of two primes.": "open"}
    lemmas = res.metadata["lemma_memory"]["lemmas"]
    assert [(lm["statement"], lm["status"]) for lm in lemmas] == [
        ("Every prime p > 2 is odd.", "proven"), ("Every prime is even.", "disproved"),
        ("The integer 1 equals the integer 2.", "conflict")]
    assert loop["new_lemmas"] == 3
    assert res.metadata["lemmas_proven"] == ["Every prime p > 2 is odd."]
    assert res.metadata["claims_disproved"] == ["Every prime is even."]
    assert res.metadata["claims_conflict"] == ["The integer 1 equals the integer 2."]
    # the final solvers (all but the context-free one) get lemmas, avoid-list, cautions, previous attempt
    finals = [r for r in backend.requests if kind_of(r) == "solver" and "Proven lemmas" in request_text(r)]
    assert len(finals) == 2
    text = request_text(finals[0])
    lemmas_part = text.split("## Proven lemmas", 1)[1].split("## Use with caution", 1)[0]
    caution_part = text.split("## Use with caution", 1)[1].split("## Disproved claims", 1)[0]
    avoid_part = text.split("## Disproved claims", 1)[1].split("## Another student's attempt", 1)[0]
    assert "Every prime p > 2 is odd." in lemmas_part and "Every prime is even." not in lemmas_part
    assert "The integer 1 equals the integer 2." in caution_part
    assert "Every prime is even." in avoid_part
    assert "sum of two primes" not in text  # open claims are not passed on
    assert re.search(r"Another student's attempt.*ATTEMPT-MARK-\d", text, re.DOTALL)


async def test_threshold_boundary_and_unparseable_proof_grade():
    claims = {"Claim at five.": (5, 4), "Claim below.": (4, 5)}
    backend = ScriptedBackend(make_script(claims=claims))
    res = await small(lemma_threshold=5).run(Task(id="t", prompt=PROBLEM), backend)
    status = {o["statement"]: o["status"] for o in res.metadata["loops"][0]["outcomes"]}
    assert status == {"Claim at five.": "proven", "Claim below.": "disproved"}

    def garbled(req):
        if kind_of(req) == "conjecture-grade":
            return "looks fine to me"
        return make_script(claims=claims)(req)

    res = await small().run(Task(id="t", prompt=PROBLEM), ScriptedBackend(garbled))
    outcomes = res.metadata["loops"][0]["outcomes"]
    assert [o["status"] for o in outcomes] == ["open", "open"]
    assert outcomes[0]["statement_grade"] is None
    assert res.metadata["lemma_memory"]["lemmas"] == []


# -- lemma memory -----------------------------------------------------------------------------------
def test_lemma_memory_deduplicates_normalized_text():
    mem = LemmaMemory()

    def out(s, status="proven"):
        return ConjectureOutcome(statement=s, negation=negation(s), status=status)

    assert mem.add(out("Every prime $p > 2$ is odd.")) is True
    assert mem.add(out("every  prime p>2 is ODD")) is False
    assert mem.add(out("**Every prime p > 2 is odd**;")) is False
    assert mem.add(out("Every prime p > 3 is odd.")) is True  # different claim: kept
    assert mem.add(out("Something open.", "open")) is False
    assert len(mem.lemmas) == 2
    # the same claim coming back with the opposite verdict becomes a conflict
    assert mem.add(out("every prime p > 3 is odd", "disproved")) is False
    assert [lm.status for lm in mem.lemmas] == ["proven", "conflict"]
    assert normalize_statement(" A  b$.") == "ab"
    assert normalize_statement("x - y") != normalize_statement("x + y")


async def test_known_lemmas_are_not_verified_again_in_later_loops():
    claims = {"Every prime p > 2 is odd.": (7, 1)}
    calls = {"extract": 0}

    def extraction(req):
        calls["extract"] += 1
        s = "Every prime p > 2 is odd." if calls["extract"] == 1 else "every prime  P > 2 is odd"
        return json.dumps({"conjectures": [{"statement": s, "negation": negation("Every prime p > 2 is odd.")}],
                           "solution": "ASSUMED-MARK"})

    backend = ScriptedBackend(make_script(claims=claims, extraction=extraction))
    res = await small(loops=2).run(Task(id="t", prompt=PROBLEM), backend)
    loop1, loop2 = res.metadata["loops"]
    assert len(loop1["outcomes"]) == 1 and loop1["new_lemmas"] == 1
    assert loop2["outcomes"] == [] and loop2["skipped_known"] == 1 and loop2["new_lemmas"] == 0
    assert roles(res)["conjecture-solve"] == 2 and roles(res)["conjecture-grade"] == 2
    assert len(res.metadata["lemma_memory"]["lemmas"]) == 1
    # loop 2's extractor was told what is already proven
    second_extract = [r for r in backend.requests if kind_of(r) == "extract"][1]
    assert "Already proven" in request_text(second_extract)


# -- final solvers ----------------------------------------------------------------------------------
async def test_one_final_solver_gets_no_context():
    backend = ScriptedBackend(make_script())
    await small(final_solvers=4).run(Task(id="t", prompt=PROBLEM), backend)
    solver_reqs = [r for r in backend.requests if kind_of(r) == "solver"]
    assert len(solver_reqs) == 2 + 4
    with_ctx = [r for r in solver_reqs if "Proven lemmas" in request_text(r)]
    bare = [r for r in solver_reqs if "Proven lemmas" not in request_text(r)]
    assert len(with_ctx) == 3 and len(bare) == 3  # two phase-1 solvers and one context-free final solver
    for r in bare:
        text = request_text(r)
        assert "ATTEMPT-MARK" not in text and "REPORT-MARK" not in text and "Every prime" not in text
    # the context-free final solver is a distinct sample (not a cache twin of phase 1's solver 0)
    assert len({(r.replica, r.sample_index) for r in bare}) == 3


# -- call counts, confirmation, stopping --------------------------------------------------------------
async def test_exact_call_counts_per_phase():
    backend = ScriptedBackend(make_script())
    res = await small(loops=1, final_solvers=3).run(Task(id="t", prompt=PROBLEM), backend)
    # phase 1: 2 solves + 2 grades; loop: 1 extract, 4 claims x 2 sides x (solve, grade),
    # 3 final solves + 3 grades, 1 grade of the extractor's assumed solution
    assert roles(res) == {"solve": 5, "grade": 6, "extract": 1, "conjecture-solve": 8, "conjecture-grade": 8}
    assert backend.calls == 28 == res.usage.calls
    loop = res.metadata["loops"][0]
    assert loop["calls_by_role"]["conjecture-solve"]["calls"] == 8
    assert res.metadata["phases"]["extract"]["calls"] == 1
    paths = {r.path for r in res.trace}
    assert paths >= {"conjecture-extraction/phase1/solver", "conjecture-extraction/loop1/extract",
                     "conjecture-extraction/loop1/verify/claim", "conjecture-extraction/loop1/verify/negation",
                     "conjecture-extraction/loop1/final/solver", "conjecture-extraction/loop1/assumed"}
    assumed = [a for a in res.metadata["attempts"] if a["phase"] == "loop1-assumed"]
    assert assumed and assumed[0]["open_conjectures"] == 3  # one of four claims proven


async def test_assumed_solution_carries_the_proofs_of_proven_claims():
    backend = ScriptedBackend(make_script())
    res = await small().run(Task(id="t", prompt=PROBLEM), backend)
    assumed = next(c for c in res.candidates if c.id == "loop1-assumed")
    assert assumed.text.startswith("ASSUMED-MARK")
    assert "Claim: Every prime p > 2 is odd.\nProof: Proof sketch: it follows." in assumed.text
    assert "Every prime is even." not in assumed.text


async def test_final_top_grade_needs_confirmation_and_stops_the_loops():
    def grade(req):  # only a final (context-fed) attempt gets 7, and every confirmer agrees
        text = request_text(req)
        return 7 if "ATTEMPT-MARK-4" in text.split("## Solution to grade", 1)[1] else 3

    backend = ScriptedBackend(make_script(solution_grade=grade))
    res = await small(loops=3, final_solvers=3).run(Task(id="t", prompt=PROBLEM), backend)
    assert len(res.metadata["loops"]) == 1  # accepted in loop 1: loops 2-3 skipped
    assert res.metadata["accepted"] is True
    assert res.best.text.startswith("ATTEMPT-MARK-4")
    assert roles(res)["confirm"] == 3


async def test_rejected_confirmation_keeps_looping():
    def grade(req):
        # everything looks perfect but to each attempt's first confirmer (graders of attempt s: 4s + 0..3)
        return 2 if req.sample_index % 4 == 1 else 7

    backend = ScriptedBackend(make_script(solution_grade=grade))
    res = await small(loops=2, final_solvers=2).run(Task(id="t", prompt=PROBLEM), backend)
    assert res.metadata["accepted"] is False
    assert len(res.metadata["loops"]) == 2
    # phase 1: 2 attempts, each loop: 2 final + 1 assumed; every one is confirmed (3 each) and rejected
    assert roles(res)["confirm"] == 3 * (2 + 3 + 3)


async def test_phase1_acceptance_skips_the_loops():
    backend = ScriptedBackend(make_script(solution_grade=7))
    res = await small(loops=3).run(Task(id="t", prompt=PROBLEM), backend)
    assert res.metadata["loops"] == [] and res.metadata["accepted"] is True
    assert roles(res) == {"solve": 2, "grade": 2, "confirm": 6}


# -- extractor output -----------------------------------------------------------------------------------
def test_parse_extraction_variants():
    good = {"conjectures": [{"statement": "For all reals x, x^2 >= 0.", "negation": "Some real x has x^2 < 0."}],
            "solution": "s"}
    assert len(parse_extraction(json.dumps(good)).conjectures) == 1
    assert parse_extraction("Here you go:\n```json\n" + json.dumps(good) + "\n```\nbye").solution == "s"
    with pytest.raises(ParseError, match="no JSON"):
        parse_extraction("no json at all")
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_extraction("{not json}")
    with pytest.raises(ParseError, match="not self-contained"):
        parse_extraction(json.dumps({"conjectures": [{"statement": "The solution's step 2 holds.",
                                                       "negation": "It fails."}]}))
    with pytest.raises(ParseError, match=r"(?i)extra inputs"):
        parse_extraction(json.dumps({**good, "notes": "x"}))
    with pytest.raises(ValueError):
        Conjecture(statement="By Lemma 2, f is onto.", negation="f is not onto.")


async def test_bad_extractor_json_is_repaired_or_given_up_without_crashing():
    replies = iter(["not json", json.dumps({"conjectures": [{"statement": "Every prime p > 2 is odd.",
                                                              "negation": negation("Every prime p > 2 is odd.")}],
                                            "solution": "ASSUMED-MARK"})])
    backend = ScriptedBackend(make_script(extraction=lambda req: next(replies)))
    res = await small().run(Task(id="t", prompt=PROBLEM), backend)
    assert roles(res)["extract"] == 1 and roles(res)["extract-repair"] == 1
    assert res.metadata["loops"][0]["extraction_error"] is None
    repair = next(r for r in backend.requests if "could not be used" in last_user(r))
    assert [m.role for m in repair.messages] == ["user", "assistant", "user"]

    backend = ScriptedBackend(make_script(extraction="still not json"))
    res = await small(extract_retries=2).run(Task(id="t", prompt=PROBLEM), backend)
    loop = res.metadata["loops"][0]
    assert res.status == "ok" and loop["conjectures"] == [] and "no JSON" in loop["extraction_error"]
    assert roles(res) == {"solve": 5, "grade": 5, "extract": 1, "extract-repair": 2}  # no assumed solution


# -- composition ------------------------------------------------------------------------------------------
async def test_spec_and_nesting_as_a_generator():
    spec = {"kind": "self-consistency", "n": 2,
            "generator": {"kind": "conjecture-extraction", "solvers": 1, "rounds": 0, "loops": 1, "final_solvers": 2,
                          "confirmations": 1, "answer_format": "regex:ATTEMPT-MARK-(\\d+)"}}
    strategy = strategy_from_spec(spec)
    backend = ScriptedBackend(make_script())
    res = await strategy.run(Task(id="t", prompt=PROBLEM), backend)
    assert res.status == "ok" and len(res.candidates) == 2
    per_run = 1 + 1 + 1 + 16 + 2 + 2 + 1  # solve, grade, extract, verification, final solves+grades, assumed
    assert backend.calls == 2 * per_run
    # two replicas: their requests are distinct samples
    assert len({r.replica for r in backend.requests}) > 2
    with pytest.raises(ConfigError, match="loopz"):
        strategy_from_spec({"kind": "conjecture-extraction", "loopz": 1})


# -- the embedded model ---------------------------------------------------------------------------------
class Recorder:
    """Records the requests sent to a real backend (ScriptedBackend does this for fakes)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.requests = []

    async def complete(self, request):
        self.requests.append(request)
        return await self.inner.complete(request)


@pytest.mark.local_model
async def test_end_to_end_on_the_embedded_model():
    pytest.importorskip("llama_cpp", reason="llama_cpp is not installed (the `local` extra)")
    local = pytest.importorskip("tts.local", reason="tts.local is not available in this build")
    from tts.context import RunContext, SamplingDefaults
    from tts.errors import MissingDependency
    from tts.strategies.conjectures import LemmaMemory, LoopRecord
    from tts.strategies.solver_grader import Attempt

    try:
        backend = local.LocalBackend()
    except MissingDependency as exc:
        pytest.skip(str(exc))
    problem = "Prove that the sum of two even integers is even."
    claim = Conjecture(statement="For all integers a and b, 2a + 2b = 2(a + b).",
                       negation="There are integers a and b with 2a + 2b different from 2(a + b).")
    rec = Recorder(backend)
    defaults = SamplingDefaults(max_tokens=32, seed=1)
    try:  # small limits: the server answers one call at a time on a shared CPU
        strategy = ConjectureExtraction(solvers=1, rounds=1, context_free=0, confirmations=1, loops=1,
                                        final_solvers=1, max_conjectures=2, extract_retries=0,
                                        stop_when_accepted=False)
        res = await strategy.run(Task(id="sum", prompt=problem), rec, defaults=defaults)
        ctx = RunContext(rec, defaults=defaults, path="claims")
        outcomes = await strategy.check_claims([claim], ctx)
    finally:
        await backend.aclose()
    # mechanics and records, not mathematics (a 135M model rarely writes valid extractor JSON)
    assert res.status == "ok", res.error
    r = roles(res)
    attempts = [Attempt.model_validate(a) for a in res.metadata["attempts"]]
    (loop,) = [LoopRecord.model_validate(x) for x in res.metadata["loops"]]
    LemmaMemory.model_validate(res.metadata["lemma_memory"])
    assumed = sum(a.phase == "loop1-assumed" for a in attempts)
    assert r["extract"] == 1 and r["extract-repair"] == 0
    assert r["grade"] == r["solve"] + r["refine"] + assumed == len(attempts)
    assert r["confirm"] == sum(a.grade is not None and a.grade >= 7 for a in attempts)
    assert r["conjecture-solve"] == r["conjecture-grade"] == 2 * len(loop.outcomes)
    assert r["solve"] + r["refine"] <= 2 + 1 and r["solve"] == 2  # phase 1 (1 solver, R=1) + 1 final solver
    assert res.usage.calls == len(res.trace) and res.best is not None
    # detached checking on the real model: 2 proofs + 2 grades, each request holding one statement only
    (o,) = outcomes
    assert o.status in ("proven", "disproved", "conflict", "open")
    assert [x.role for x in ctx.records].count("conjecture-solve") == 2
    checks = rec.requests[-4:]
    assert all(problem not in request_text(q) and len(q.messages) == 1 for q in checks)
    for q in rec.requests:
        if request_text(q).startswith("Prove the following statement") or "## Proof to grade" in request_text(q):
            assert problem not in request_text(q)


async def test_no_two_calls_of_a_run_share_a_cache_key(tmp_path):
    """Distinct samples stay distinct behind the cache (sample indices and replicas), and a rerun is free."""
    from tts.wrappers.cache import CacheBackend

    script = ScriptedBackend(make_script())
    cached = CacheBackend(script, tmp_path / "cache")
    strategy = small(loops=2, rounds=1, final_solvers=3)
    first = await strategy.run(Task(id="t", prompt=PROBLEM), cached)
    assert script.calls == len(first.trace) == cached.misses and cached.hits == 0
    keys = [cached.key(r) for r in script.requests]
    assert len(set(keys)) == len(keys)
    again = await strategy.run(Task(id="t", prompt=PROBLEM), cached)
    assert script.calls == len(first.trace)  # nothing sent twice
    assert again.metadata["lemma_memory"] == first.metadata["lemma_memory"]


def test_the_code_fix_example_runs(capsys):
    import asyncio
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "claims_in_a_code_fix.py"
    spec = importlib.util.spec_from_file_location("claims_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    asyncio.run(module.main(local=False))
    out = capsys.readouterr().out
    assert re.search(r"parse_price\('1,299.00'\) returns 1.0\.\s+proven\s+7/7\s+1/7", out)
    assert re.search(r"format_price\(1299.0\) returns '1,299.00'\.\s+proven", out)
    assert re.search(r"parse_price\(format_price\(x\)\) == x .*\s+disproved\s+1/7\s+7/7", out)
    assert "12 calls; roles: conjecture-grade=6, conjecture-solve=6" in out
    assert "requests that saw the bug report: 0 of 12" in out


async def test_nests_as_the_generator_inside_rtv():
    spec = {"kind": "rtv", "n": 2, "group_size": 2, "votes": 3,
            "generator": {"kind": "conjecture-extraction", "solvers": 1, "rounds": 0, "loops": 1,
                          "final_solvers": 2, "confirmations": 1}}
    backend = ScriptedBackend(make_script())
    res = await strategy_from_spec(spec).run(Task(id="t", prompt=PROBLEM), backend)
    assert res.status == "ok" and res.best is not None
    r = roles(res)
    assert r["extract"] == 2 and r["conjecture-solve"] == 2 * 8
    assert sum(n for role, n in r.items() if role not in {"solve", "grade", "extract", "conjecture-solve",
                                                           "conjecture-grade"}) == 3  # one group, V=3 judge calls
    assert {p.split("/")[1] for p in (x.path for x in res.trace) if p.count("/") >= 1} >= {"conjecture-extraction"}


async def test_lemma_memory_and_step_usage_reach_the_trace_file(tmp_path):
    from tts.trace import TraceWriter, read_trace

    res = await small().run(Task(id="t", prompt=PROBLEM), ScriptedBackend(make_script()))
    path = tmp_path / "run.jsonl"
    with TraceWriter(path) as w:
        w.write_result(res)
    trace = read_trace(path)
    (result,) = trace.results
    assert result.metadata["lemmas_proven"] == ["Every prime p > 2 is odd."]
    assert result.metadata["claims_disproved"] == ["Every prime is even."]
    assert result.metadata["loops_run"] == 1
    roles_in_file = Counter(c.role for c in trace.calls)
    assert roles_in_file == roles(res)


async def test_with_a_seed_no_two_requests_are_the_same_on_the_wire():
    """What the provider sees (messages + parameters, not our replica) differs for every call, so a
    seeded run never gets one sample where it asked for several (e.g. the context-free solvers)."""
    from tts.context import SamplingDefaults

    backend = ScriptedBackend(make_script(solution_grade=lambda req: 7 if req.sample_index % 4 else 3))
    res = await small(loops=2, rounds=1, final_solvers=3, stop_when_accepted=False).run(
        Task(id="t", prompt=PROBLEM), backend, defaults=SamplingDefaults(seed=11))
    bodies = [json.dumps([[m.to_api() for m in r.messages], r.sampling_params()], sort_keys=True)
              for r in backend.requests]
    assert len(bodies) == len(res.trace) > 40
    assert len(set(bodies)) == len(bodies)

"""The records of conjecture extraction (docs/algorithms.md): conjectures and their negations as the
extractor's validated JSON, the outcome of checking each in a detached context, and the lemma
memory kept across loops. Pure data and parsing; the loop is `tts.strategies.conjectures`."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from tts.errors import ParseError
from tts.records import Record

# A self-contained statement never points back at a context its solver will not see.
_CONTEXT_REFERENCE = re.compile(
    r"\b(the (original )?problem|the (given |above |previous )?solution|the attempt|as (defined|stated) "
    r"(above|earlier|before)|see above|conjecture \d+|lemma \d+)\b", re.IGNORECASE)


class Conjecture(Record):
    """A self-contained claim and its negation, as the extractor wrote them."""

    statement: str = Field(min_length=1)
    negation: str = Field(min_length=1)

    @field_validator("statement", "negation")
    @classmethod
    def _self_contained(cls, v: str) -> str:
        m = _CONTEXT_REFERENCE.search(v)
        if m:
            raise ValueError(f"not self-contained: it refers to {m.group(0)!r}; restate the definitions instead")
        return v.strip()


class Extraction(Record):
    """What the extractor returns: the conjectures and a solution that assumes them."""

    conjectures: list[Conjecture] = Field(default_factory=list)
    solution: str = ""


Status = Literal["proven", "disproved", "conflict", "open"]


class ConjectureOutcome(Record):
    """The verdict on one conjecture from its statement's and its negation's graded proofs."""

    statement: str
    negation: str
    status: Status
    statement_grade: float | None = None
    negation_grade: float | None = None
    statement_proof: str = ""
    negation_proof: str = ""
    loop: int = 0


def outcome_status(statement_ok: bool, negation_ok: bool) -> Status:
    """The truth table: C only -> proven; not-C only -> disproved; both -> conflict; neither -> open."""
    if statement_ok and negation_ok:
        return "conflict"
    if statement_ok:
        return "proven"
    if negation_ok:
        return "disproved"
    return "open"


def normalize_statement(text: str) -> str:
    """The de-duplication key: case, whitespace, markdown/LaTeX delimiters and final period ignored."""
    return re.sub(r"[\s$*`]+", "", text.lower()).rstrip(".;:")


class Lemma(Record):
    """A settled claim in the lemma memory."""

    statement: str
    negation: str
    status: Literal["proven", "disproved", "conflict"]
    """proven: use it; disproved: avoid it (its negation was proven); conflict: both proven, use with caution."""
    proof: str = ""
    """The graded proof of the statement (proven) or of the negation (disproved)."""
    loop: int = 0


class LemmaMemory(Record):
    """Settled claims, kept across loops; one entry per claim (normalized text), in order found."""

    lemmas: list[Lemma] = Field(default_factory=list)

    def find(self, text: str) -> Lemma | None:
        key = normalize_statement(text)
        for lemma in self.lemmas:
            if key in (normalize_statement(lemma.statement), normalize_statement(lemma.negation)):
                return lemma
        return None

    def add(self, outcome: ConjectureOutcome) -> bool:
        """Record a settled outcome; False for `open` ones and for claims already known (a claim that
        comes back with the opposite verdict is downgraded to a conflict)."""
        if outcome.status == "open":
            return False
        known = self.find(outcome.statement)
        if known is not None:
            flipped = normalize_statement(known.statement) != normalize_statement(outcome.statement)
            verdict = {"proven": "disproved", "disproved": "proven"}.get(outcome.status, outcome.status) \
                if flipped else outcome.status
            if verdict != known.status and known.status != "conflict":
                i = self.lemmas.index(known)
                self.lemmas[i] = known.model_copy(update={"status": "conflict"})
            return False
        proof = outcome.negation_proof if outcome.status == "disproved" else outcome.statement_proof
        self.lemmas.append(Lemma(statement=outcome.statement, negation=outcome.negation, status=outcome.status,
                                 proof=proof, loop=outcome.loop))
        return True

    def statements(self, status: str) -> list[str]:
        return [lemma.statement for lemma in self.lemmas if lemma.status == status]


class LoopRecord(Record):
    """What one loop did and cost."""

    loop: int
    extraction_error: str | None = None
    conjectures: list[Conjecture] = Field(default_factory=list)
    skipped_known: int = 0
    """Extracted conjectures already settled in the lemma memory (not verified again)."""
    outcomes: list[ConjectureOutcome] = Field(default_factory=list)
    new_lemmas: int = 0
    best_grade: float | None = None
    accepted: bool = False
    calls_by_role: dict[str, dict[str, float | int]] = Field(default_factory=dict)


def parse_extraction(text: str) -> Extraction:
    """The extractor's JSON (bare, or in a ```json fence); ParseError naming what is wrong."""
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.DOTALL)
    body = fenced.group(1) if fenced else text[text.find("{"): text.rfind("}") + 1]
    if not body:
        raise ParseError("no JSON object found")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON ({exc.msg} at position {exc.pos})") from None
    try:
        return Extraction.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ParseError(f"field {loc!r}: {err['msg']}") from None

"""The strategy part of `tts run`: `--strategy KIND` with its main parameters as flags, or
`--spec FILE` (a nested strategy as YAML/JSON data; it wins over the flags).

A flag given for a strategy that has no use for it is a one-line ConfigError, not silently
ignored. Strategy kinds registered later (with `tts.spec.register`) are reachable by name: a
flag applies to them when the class has a field of the same name.
"""

from __future__ import annotations

import argparse
from typing import Any

from tts.errors import ConfigError

BUILTIN = ("single", "best-of-n", "self-consistency", "sequential-refinement", "pdr", "rtv", "solver-grader",
           "conjecture-extraction")

# flag dest -> strategy field it sets when the strategy class has that field
_DIRECT = ("n", "rounds", "drafts", "distill", "kappa", "group_size", "votes", "select_k", "critique")
# solver-grader / conjecture-extraction
_DIRECT += ("solvers", "confirmations", "grade_threshold", "loops", "final_solvers")


def add_strategy_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("strategy")
    g.add_argument("--strategy", default=None, metavar="KIND",
                   help=f"{' | '.join(BUILTIN)} (or any registered kind; default: single)")
    g.add_argument("--spec", metavar="FILE", help="a strategy described as YAML or JSON (wins over the flags below)")
    g.add_argument("--n", type=int, help="candidates (best-of-n, self-consistency, rtv)")
    g.add_argument("--rounds", type=int, help="rounds R (sequential-refinement, pdr)")
    g.add_argument("--drafts", type=_drafts,
                   help="pdr drafts per round: M (the last round draws 1) or a list like 8,4,1")
    g.add_argument("--distill", choices=["summary", "top-k", "random-k"], help="pdr distill operator")
    g.add_argument("--kappa", type=int, help="bound on the workspace / previous attempt, in tokens (pdr, "
                   "sequential-refinement)")
    g.add_argument("--group-size", type=int, help="RTV group size G (rtv; pdr --distill top-k)")
    g.add_argument("--votes", type=int, help="RTV votes per group V (rtv; pdr --distill top-k)")
    g.add_argument("--select-k", type=int,
                   help="survivors K (rtv) / drafts kept in the workspace (pdr top-k, random-k)")
    g.add_argument("--critique", action="store_true", default=None,
                   help="sequential-refinement: an LLM critique of each attempt before refining it")
    g.add_argument("--solvers", type=int, help="solvers S in parallel (solver-grader, conjecture-extraction); "
                   "--rounds sets their feedback rounds R")
    g.add_argument("--confirmations", type=int, help="graders k that must confirm a top grade (solver-grader, "
                   "conjecture-extraction)")
    g.add_argument("--grade-threshold", type=float, help="the top grade, out of 7 (solver-grader, "
                   "conjecture-extraction)")
    g.add_argument("--loops", type=int, help="conjecture-extraction loops L")
    g.add_argument("--final-solvers", type=int, help="conjecture-extraction final solvers F per loop")
    g.add_argument("--verifier", help="programmatic verifier: answer (the task's reference answer: an oracle), "
                   "check (the task's metadata 'check' expression) or module:function; "
                   "best-of-n scorer, sequential-refinement feedback/stop, pdr top-k selector")
    g.add_argument("--answer-format", help="auto | last-number | boxed | answer-line | regex:PATTERN")


def _drafts(value: str) -> int | list[int]:
    try:
        parts = [int(p) for p in value.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a list like 8,4,1, got {value!r}") from None
    if not parts:
        raise argparse.ArgumentTypeError("expected a number or a list like 8,4,1")
    return parts[0] if len(parts) == 1 and "," not in value else parts


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def build_strategy(args: argparse.Namespace) -> Any:
    """The Strategy that `args` describe. ConfigError (one line) on any misfit."""
    from tts.spec import load_spec, strategy_class, strategy_from_spec, strategy_kinds

    if getattr(args, "spec", None):
        return load_spec(args.spec)
    kind = getattr(args, "strategy", None) or "single"
    kinds = strategy_kinds()
    if kind not in kinds:
        raise ConfigError(f"unknown --strategy {kind!r}; allowed: {', '.join(kinds)}")
    fields = strategy_class(kind).model_fields
    spec: dict[str, Any] = {"kind": kind}
    given = {d: getattr(args, d, None) for d in (*_DIRECT, "verifier", "answer_format")}
    given = {d: v for d, v in given.items() if v is not None}

    def unused(dest: str) -> ConfigError:
        return ConfigError(f"{_flag(dest)} does not apply to --strategy {kind}")

    if "answer_format" in given:
        spec["answer_format"] = given.pop("answer_format")
        if "generator" in fields:  # the default generator extracts the candidates' answers: same format
            spec["generator"] = {"kind": "single", "answer_format": spec["answer_format"]}
    if kind == "pdr":
        _pdr_flags(given, spec, unused)
    if "verifier" in given:
        if "scorer" not in fields:
            raise unused("verifier")
        spec["scorer"] = _verifier(given.pop("verifier"))
        if kind == "sequential-refinement":
            spec["stop_at"] = 1.0  # a passing check ends the refinement
    for dest, value in given.items():
        if dest not in fields:
            raise unused(dest)
        spec[dest] = value
    if kind == "best-of-n" and "scorer" not in spec:
        spec["selector"] = {"kind": "listwise-judge"}  # no verifier: one judge call picks
    return strategy_from_spec(spec)


def _pdr_flags(given: dict[str, Any], spec: dict[str, Any], unused) -> None:
    """PDR's selector flags: --select-k is its k; --group-size/--votes make the top-k selector RTV;
    --verifier makes it the verifier (the oracle-workspace ablation when the check is the answer)."""
    if "select_k" in given:
        if given.get("distill") not in ("top-k", "random-k"):
            raise ConfigError("--select-k applies to pdr only with --distill top-k or random-k")
        spec["k"] = given.pop("select_k")
    rtv = {name: given.pop(name) for name in ("group_size", "votes") if name in given}
    verifier = given.pop("verifier", None)
    if rtv and verifier is not None:
        raise ConfigError("pdr: give either --group-size/--votes (RTV top-k) or --verifier, not both")
    if rtv or verifier is not None:
        if given.get("distill") != "top-k":
            raise ConfigError(f"{_flag(next(iter(rtv)) if rtv else 'verifier')} applies to pdr only with "
                              f"--distill top-k")
        spec["selector"] = {"kind": "rtv", **rtv} if rtv else _verifier(verifier)
    if "n" in given:
        raise ConfigError("--n does not apply to --strategy pdr; use --drafts (drafts per round)")


def _verifier(check: str) -> dict[str, Any]:
    from tts.selectors.verifier import Verifier

    Verifier.from_spec(check)  # validate now: a one-line error naming the allowed values
    return {"kind": "verifier", "check": check}

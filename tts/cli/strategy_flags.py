"""The strategy part of `tts run`: `--strategy KIND` with its main parameters as flags, or
`--spec FILE` (a nested strategy as YAML/JSON data; a strategy flag beside it is an error naming
both, never silently ignored).

A flag given for a strategy that has no use for it is a one-line ConfigError, not silently
ignored. Strategy kinds registered later (with `tts.spec.register`) are reachable by name: a
flag applies to them when the class has a field of the same name.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from tts.errors import ConfigError

# Flags whose parsing or meaning the registry cannot infer from a field; everything else a
# registered strategy has (a field, or a preset's shortcut) becomes a flag by itself.
_SPECIAL: dict[str, dict[str, Any]] = {
    "n": {"type": int, "help": "candidates (best-of-n, self-consistency, rtv, generate-select)"},
    "drafts": {"help": "pdr drafts per round: M (the last round draws 1) or a list like 8,4,1"},
    "select_k": {"type": int, "help": "survivors K (rtv) / drafts kept in the workspace (pdr top-k, random-k)"},
    "verifier": {"help": "programmatic verifier: answer (the task's reference answer: an oracle), check (the "
                 "task's metadata 'check' expression), tests (run each candidate's code against the task's "
                 "metadata 'tests' in a sandbox; score = fraction passed) or module:function; best-of-n "
                 "scorer, sequential-refinement feedback/stop, pdr top-k selector"},
    "selector": {"metavar": "KIND", "help": "the selector that picks among the candidates (best-of-n, "
                 "generate-select; pdr --distill top-k): any registered selector kind, e.g. majority, rtv, "
                 "listwise-judge, p-true, rpc (needs logprobs), b4 (code: model-written tests), tests, "
                 "self-certainty, confidence-vote"},
    "answer_format": {"help": "auto | last-number | boxed | answer-line | regex:PATTERN"},
}
_NOT_FLAGS = {"kind", "prompts", "generator", "scorer", "summarizer", "judge", "k",
              "n_per_request"}  # a run-wide sampling flag of `tts run` (--n-per-request)


def strategy_options() -> dict[str, list[tuple[str, Any, Any]]]:
    """Every option a registered strategy takes, by name: [(kind, field info, default), ...].
    A preset's shortcut keywords count, with the field info of the selector that takes them."""
    from tts.registry import classes

    out: dict[str, list[tuple[str, Any, Any]]] = {}
    for kind, cls in sorted(classes("strategy").items()):
        fields = dict(cls.model_fields)
        selector = fields.get("selector")
        for name in getattr(cls, "shortcuts", ()):
            sel_cls = type(selector.get_default(call_default_factory=True)) if selector is not None else None
            sel_fields = getattr(sel_cls, "model_fields", {})
            if name in sel_fields:
                fields[name] = sel_fields[name]
        for name, info in fields.items():
            out.setdefault(name, []).append((kind, info, info.get_default(call_default_factory=True)))
    return out


def add_strategy_flags(parser: argparse.ArgumentParser) -> None:
    """`--strategy`, `--spec`, and one flag per option of the registered strategies (help from the
    field's doc, the defaults per kind shown)."""
    from tts.registry import kinds

    g = parser.add_argument_group("strategy")
    g.add_argument("--strategy", default=None, metavar="KIND",
                   help=f"{' | '.join(kinds('strategy'))} (default: single)")
    g.add_argument("--spec", metavar="FILE", help="a strategy described as YAML or JSON (not combinable with the "
                   "strategy flags below, except --judge-model)")
    options = strategy_options()
    for name in sorted(set(options) - _NOT_FLAGS - set(_SPECIAL)):
        kw = _flag_kwargs(options[name])
        if kw is not None:
            g.add_argument(_flag(name), dest=name, **kw)
    for name, kw in _SPECIAL.items():
        extra = {"type": _drafts} if name == "drafts" else {}
        g.add_argument(_flag(name), dest=name, **{**kw, **extra})


def _strategy_dests() -> list[str]:
    options = strategy_options()
    return sorted((set(options) - _NOT_FLAGS) | set(_SPECIAL))


def _flag_kwargs(uses: list[tuple[str, Any, Any]]) -> dict[str, Any] | None:
    """argparse keywords for an option from its field type, or None when it is no plain value."""
    _, info, _ = uses[0]
    tp = _plain_type(info.annotation)
    if tp is None:
        return None
    doc = " ".join((info.description or "").split())
    defaults = "; ".join(f"{k}: {d}" for k, _, d in uses if d is not None)
    helptext = f"{doc} [{', '.join(k for k, _, _ in uses)}{'; default ' + defaults if defaults else ''}]"
    helptext = helptext.replace("%", "%%")
    if tp is bool:
        return {"action": "store_true", "default": None, "help": helptext}
    if isinstance(tp, tuple):
        return {"choices": list(tp), "help": helptext}
    return {"type": tp, "help": helptext}


def _plain_type(annotation: Any) -> Any:
    """int, float, str, bool, or a tuple of Literal choices; None for anything else."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return tuple(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _plain_type(args[0])
    return annotation if annotation in (int, float, str, bool) else None


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
        flags = ("strategy", *_strategy_dests())
        overridden = [d for d in flags if getattr(args, d, None) is not None]
        if overridden:
            raise ConfigError(f"--spec {args.spec} and {_flag(overridden[0])} both set the strategy: the spec "
                              f"file would override {_flag(overridden[0])}; put it in the spec or drop --spec")
        return load_spec(args.spec)
    kind = getattr(args, "strategy", None) or "single"
    kinds = strategy_kinds()
    if kind not in kinds:
        raise ConfigError(f"unknown --strategy {kind!r}; allowed: {', '.join(kinds)}")
    cls = strategy_class(kind)
    fields = {**cls.model_fields, **dict.fromkeys(getattr(cls, "shortcuts", ()))}
    spec: dict[str, Any] = {"kind": kind}
    given = {d: getattr(args, d, None) for d in _strategy_dests()}
    given = {d: v for d, v in given.items() if v is not None}

    def unused(dest: str) -> ConfigError:
        return ConfigError(f"{_flag(dest)} does not apply to --strategy {kind}")

    if "answer_format" in given:
        spec["answer_format"] = given.pop("answer_format")
        if "generator" in fields:  # the default generator extracts the candidates' answers: same format
            spec["generator"] = {"kind": "single", "answer_format": spec["answer_format"]}
    if kind == "pdr":
        _pdr_flags(given, spec, unused)
    if kind == "best-of-n" and any(d in given for d in ("votes", "group_size", "early_stop", "wave")):
        # best-of-n with votes: an RTV tournament over the N picks the best
        rtv = {name: given.pop(name) for name in ("group_size", "votes") if name in given}
        spec["selector"] = {"kind": "rtv", **rtv, **_contest_flags(given, bool(rtv))}
    if getattr(args, "selector", None) is not None:
        _selector_flag(args.selector, kind, fields, spec, unused, getattr(args, "distill", None))
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
    if kind == "best-of-n" and "scorer" not in spec and "selector" not in spec:
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
    rtv.update(_contest_flags(given, bool(rtv)))
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


def _contest_flags(given: dict[str, Any], rtv: bool) -> dict[str, Any]:
    """--early-stop/--wave for a strategy whose votes are an RTV selector's contests."""
    flags = {name: given.pop(name) for name in ("early_stop", "wave") if name in given}
    if flags and not rtv:
        raise ConfigError(f"{_flag(next(iter(flags)))} applies here only to RTV votes: add --votes V")
    return flags


def _selector_flag(name: str, kind: str, fields: dict, spec: dict[str, Any], unused, distill: str | None) -> None:
    """--selector KIND: the strategy's `selector` field (validated now: an unknown kind is one line)."""
    from tts.registry import component_from_spec
    from tts.spec import strategy_class

    allowed = getattr(strategy_class(kind), "selector_kinds", None)
    if "selector" not in fields or (allowed is not None and name not in allowed):
        raise unused("selector")
    if "selector" in spec:
        raise ConfigError("give either --selector or --group-size/--votes/--verifier for the pdr top-k selector")
    if kind == "pdr" and distill != "top-k":
        raise ConfigError("--selector applies to pdr only with --distill top-k")
    chosen = component_from_spec(name)
    if not callable(getattr(chosen, "select", None)):
        raise ConfigError(f"--selector {name!r} is not a selector (it has no select method)")
    spec["selector"] = {"kind": name}


def _verifier(check: str) -> dict[str, Any]:
    from tts.selectors.verifier import Verifier

    if check == "tests":
        return {"kind": "tests"}  # the sandboxed code-test verifier (tts.selectors.code_tests)
    Verifier.from_spec(check)  # validate now: a one-line error naming the allowed values
    return {"kind": "verifier", "check": check}

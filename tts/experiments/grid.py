"""Grids: a list of strategy specs in which any field may be a list, expanded to every combination.

    - {kind: single}
    - {kind: self-consistency, n: [4, 8, 16]}          # three configurations
    - {kind: pdr, drafts: [[4, 1], [8, 1]], kappa: 256} # a field that takes a list: sweep with a list of lists
    - {kind: [best-of-n, self-consistency], n: 8}       # the kind is a field too
    - {label: sc-score, kind: self-consistency, weighted_by: score, n: [4, 8]}

Nested specs (a generator, a selector) expand the same way. A field whose type itself takes a
list (PDR's `drafts`, `prompts`) is swept only by a list of lists. Each configuration gets a
label: its kind plus the fields it sets (`self-consistency n=4`), or, when the item has a `label`,
that label plus the fields the item sweeps (`sc-weighted n=4`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import typing
from pathlib import Path
from typing import Any

from pydantic import Field

from tts.errors import ConfigError
from tts.records import Record


class Config(Record):
    """One row of a comparison: a strategy spec on one model."""

    label: str
    family: str
    """What the plots draw as one line: the spec's `label` or its kind."""
    spec: dict[str, Any]
    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    """The fields the spec sets (what tells it apart from its family's defaults)."""

    def key(self, salt: str = "") -> str:
        """Identifies the configuration in results.jsonl across runs (spec, model and `salt`, e.g.
        the sampling defaults): a rerun with other settings does not reuse stale rows."""
        body = json.dumps({"label": self.label, "spec": self.spec, "model": self.model, "salt": salt},
                          sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def load_grid(source: str | Path | list | dict) -> list[dict[str, Any]]:
    """The spec objects of a grid: a YAML/JSON file, a list of mappings, or one mapping."""
    if isinstance(source, (str, Path)):
        from tts.spec import read_data_file

        data, where = read_data_file(source, "grid"), str(source)
    else:
        data, where = source, "grid"
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where}: a grid is a non-empty list of strategy specs like {{kind: self-consistency, "
                          f"n: [4, 8]}}")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "kind" not in item:
            raise ConfigError(f"{where}: item {i + 1} must be a mapping with a 'kind', got {item!r}")
    return data


def _field_takes_list(cls: type | None, name: str) -> bool:
    """Whether the config field `name` of `cls` accepts a list as one value (then a list of lists sweeps it)."""
    fields = getattr(cls, "model_fields", None) or {}
    if name not in fields:
        return False
    return _mentions_list(fields[name].annotation)


def _mentions_list(tp: Any) -> bool:
    if typing.get_origin(tp) in (list, tuple, set):
        return True
    return any(_mentions_list(a) for a in typing.get_args(tp))


def _class_of(kind: Any, strategy: bool) -> type | None:
    from tts.registry import find_class

    if not isinstance(kind, str):
        return None
    found = find_class(kind)  # a strategy kind first, then selector, scorer, summarizer
    return found[1] if found else None


def expand_spec(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the lists in `spec` (nested specs included), in a stable order."""
    kinds = spec["kind"] if isinstance(spec.get("kind"), list) else [spec.get("kind")]
    out: list[dict[str, Any]] = []
    for kind in kinds:
        cls = _class_of(kind, strategy=True)
        names, options = ["kind"], [[kind]]
        for name, value in spec.items():
            if name == "kind":
                continue
            names.append(name)
            options.append(_options(cls, name, value))
        out += [dict(zip(names, combo, strict=True)) for combo in itertools.product(*options)]
    return out


def _options(cls: type | None, name: str, value: Any) -> list[Any]:
    if isinstance(value, dict) and "kind" in value:
        return expand_spec(value)
    if not isinstance(value, list) or name == "label":
        return [value]
    if _field_takes_list(cls, name) and not all(isinstance(v, list) for v in value):
        return [value]  # e.g. drafts: [4, 1] is one schedule; drafts: [[4, 1], [8, 1]] sweeps it
    if not value:
        raise ConfigError(f"grid: field '{name}' is an empty list: give at least one value")
    flat: list[Any] = []
    for v in value:
        flat += expand_spec(v) if isinstance(v, dict) and "kind" in v else [v]
    return flat


def describe(spec: dict[str, Any]) -> str:
    """`kind k=v, ...` for the fields a spec sets; nested specs in parentheses."""
    parts = [f"{k}={_short(v)}" for k, v in spec.items() if k not in ("kind", "label")]
    return f"{spec.get('kind')}" + (f" {' '.join(parts)}" if parts else "")


def _short(value: Any) -> str:
    if isinstance(value, dict) and "kind" in value:
        return f"({describe(value)})"
    if isinstance(value, list):
        return ",".join(_short(v) for v in value)
    return json.dumps(value) if isinstance(value, (dict, str)) and " " in str(value) else str(value)


def expand_grid(grid: str | Path | list | dict, models: list[str] | str) -> list[Config]:
    """Every configuration of `grid` on every model, validated (a bad spec is a one-line ConfigError)."""
    from tts.spec import strategy_from_spec

    models = [models] if isinstance(models, str) else list(models)
    if not models:
        raise ConfigError("compare needs at least one model")
    configs: list[Config] = []
    seen: dict[str, int] = {}
    for item in load_grid(grid):
        specs = expand_spec(item)
        swept = {k for k in specs[0] if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in specs}) > 1}
        for spec in specs:
            name = spec.pop("label", None)
            strategy_from_spec(spec)  # validate now, before anything is sent
            family = str(name or spec["kind"])
            if name:  # a named item: its name plus the fields it sweeps
                text = describe({k: v for k, v in spec.items() if k == "kind" or k in swept})
                label = f"{name} {text.split(' ', 1)[1]}" if " " in text else str(name)
            else:
                label = describe(spec)
            for model in models:
                full = f"{label} @ {model}" if len(models) > 1 else label
                seen[full] = seen.get(full, 0) + 1
                if seen[full] > 1:
                    full = f"{full} #{seen[full]}"
                configs.append(Config(label=full, family=family, spec=spec, model=model,
                                      params={k: v for k, v in spec.items() if k != "kind"}))
    return configs

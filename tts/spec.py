"""Strategies described as data (YAML or JSON spec files), validated with `extra="forbid"`.

A spec is a mapping with a `kind` (the strategy's registered name) and its config fields; a
field that holds a strategy or another component takes a nested spec. The kinds live in the one
registry, `tts.registry`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts.errors import ConfigError
from tts.registry import StrategyField, build, component_class, describe_validation_error, kinds, register


def strategy_kinds() -> list[str]:
    return kinds("strategy")


def strategy_class(kind: str) -> type:
    """The registered strategy class of `kind`; ConfigError naming the allowed kinds."""
    return component_class("strategy", kind)


def strategy_from_spec(spec: Any) -> Any:
    """A Strategy from a mapping with a `kind` (or pass a Strategy through)."""
    if isinstance(spec, str):
        raise ConfigError(f"a strategy spec must be a mapping with a 'kind', got the string {spec!r}")
    if not isinstance(spec, dict) and not callable(getattr(spec, "solve", None)):
        raise ConfigError(f"a strategy spec must be a mapping with a 'kind', got {type(spec).__name__}")
    return build("strategy", spec)


def load_spec(path: str | Path) -> Any:
    """Read a YAML or JSON spec file into a Strategy; ConfigError on any problem."""
    return strategy_from_spec(read_data_file(path, "spec"))


def read_data_file(path: str | Path, what: str) -> Any:
    """The data in a YAML (or, by its .json suffix, JSON) file; a one-line ConfigError naming the
    `what` file otherwise."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {p}: {exc.strerror}") from None
    try:
        if p.suffix == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except (ValueError, Exception) as exc:  # yaml.YAMLError has no common base with ValueError
        raise ConfigError(f"{what} file {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None


__all__ = ["StrategyField", "describe_validation_error", "load_spec", "read_data_file", "register",
           "strategy_class", "strategy_from_spec", "strategy_kinds"]

"""Strategies described as data (YAML or JSON spec files), validated with `extra="forbid"`.

A spec is a mapping with a `kind` (the strategy's registered name) and its config fields; a
field that holds a strategy (a generator, a component) takes a nested spec. Every strategy
class registers itself here with `@register`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SerializeAsAny, ValidationError

from tts.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a strategy reachable from spec files by its `kind`."""
    kind = cls.model_fields["kind"].default
    _REGISTRY[kind] = cls
    return cls


def _load_builtins() -> None:
    import tts.strategies  # noqa: F401  (the package imports every built-in strategy module)


def strategy_kinds() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def strategy_class(kind: str) -> type:
    """The registered strategy class of `kind`; ConfigError naming the allowed kinds."""
    _load_builtins()
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown strategy kind {kind!r}; allowed: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[kind]


def strategy_from_spec(spec: Any) -> Any:
    """A Strategy from a mapping (or pass a Strategy through)."""
    from tts.strategies.base import Strategy

    if isinstance(spec, Strategy):
        return spec
    if not isinstance(spec, dict):
        raise ConfigError(f"a strategy spec must be a mapping with a 'kind', got {type(spec).__name__}")
    _load_builtins()
    return build_from_spec(_REGISTRY, spec, "strategy")


def build_from_spec(registry: dict[str, type], spec: dict[str, Any], what: str) -> Any:
    """Validate `spec` as the class its `kind` names in `registry`; one-line ConfigError otherwise.
    Shared by strategies and by selectors/scorers/summarizers (tts.selectors.registry)."""
    kind = spec.get("kind")
    if kind not in registry:
        raise ConfigError(f"unknown {what} kind {kind!r}; allowed: {', '.join(sorted(registry))}")
    try:
        return registry[kind].model_validate(spec)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where=f"{what} {kind!r}")) from None


def describe_validation_error(exc: ValidationError, where: str) -> str:
    """One line naming the first bad field and, where pydantic knows them, the allowed values."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        msg += f" (allowed: {ctx['expected']})"
    return f"{where}: field '{loc}': {msg}"


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


def _nested(value: Any) -> Any:
    return strategy_from_spec(value) if isinstance(value, dict) else value


# Use as the type of a config field that holds another strategy: accepts a Strategy or a spec.
StrategyField = Annotated[SerializeAsAny[Any], BeforeValidator(_nested)]

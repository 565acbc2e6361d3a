"""The one registry: components by role (strategy, selector, scorer, summarizer), each by `kind`.

A component is a frozen pydantic config (`Config`) whose `kind` field is its one name:

    @register
    class MyStrategy(Strategy):
        kind: Literal["mine"] = "mine"
        ...

The roles a class fills follow from its methods (`solve`, `select`, `score`, `summarize`, see
`tts.contracts.ROLES`). A field typed `StrategyField`, `SelectorField`, `ScorerField`,
`SummarizerField` or `TestWriterField` accepts an instance of that role, a mapping with a `kind`,
or a bare kind name, and nothing else: the error names the field, the role, the bad kind and the allowed kinds.

Built-in components are loaded on first use, as plugins are: the modules in `BUILTIN_MODULES`,
then every `tts.plugins` entry point, then any module named with `load_plugin` (`tts run --plugin`).
"""

from __future__ import annotations

import weakref
from functools import partial
from importlib import import_module
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
)

from tts.contracts import ROLES
from tts.errors import ConfigError

BUILTIN_MODULES = ("tts.strategies", "tts.selectors", "tts.summarizers")
ENTRY_POINT_GROUP = "tts.plugins"

_KINDS: dict[str, dict[str, type]] = {role: {} for role in ROLES}
_loaded = False


class Config(BaseModel):
    """Base of every registered component: frozen, no unknown fields; a bad value is a
    ConfigError naming the component and the field (not pydantic's multi-line report)."""

    # field docstrings become field descriptions: the CLI's help texts
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, where=_label(type(self)))) from None
        except ConfigError as exc:  # from a field holding a component: say whose field it is
            raise ConfigError(f"{_label(type(self))}: {exc}") from None

    def needs(self) -> frozenset[str]:
        """What this component needs of a run (collected over a nested spec by `needs`):
        "logprobs" when it reads the candidates' token logprobs (its own calls ask for their own),
        "text-only" when it answers in text only (no tools, no JSON format)."""
        return frozenset()


def components(root: Any) -> list[Config]:
    """`root` and every component nested in its fields (lists and mappings included), outside in."""
    out: list[Config] = []

    def walk(value: Any) -> None:
        if isinstance(value, Config):
            out.append(value)
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(root)
    return out


def needs(*roots: Any) -> frozenset[str]:
    """Everything the components of these strategies need (see `Config.needs`): the one place
    `tts run`, `tts compare`, `tts serve` and `run_task` learn, e.g., whether to ask for logprobs.
    A component is frozen, so what one strategy needs is worked out once (`run_task` asks per task)."""
    if len(roots) == 1 and (known := _needed.get(id(roots[0]))) is not None and known[0]() is roots[0]:
        return known[1]
    out = frozenset().union(*(c.needs() for root in roots for c in components(root)))
    if len(roots) == 1 and isinstance(roots[0], Config):
        key = id(roots[0])
        _needed[key] = (weakref.ref(roots[0], lambda _: _needed.pop(key, None)), out)
    return out


_needed: dict[int, tuple[weakref.ref[Any], frozenset[str]]] = {}


class Component(Config):
    """Base of every selector, scorer and summarizer config."""

    prompts: dict[str, str] = Field(default_factory=dict)
    """Per-instance prompt overrides: template name -> other template name or literal Jinja text."""


def roles_of(obj: Any) -> list[str]:
    """The roles a class or instance fills, by the one method each role needs."""
    return [role for role, (_, method) in ROLES.items() if callable(getattr(obj, method, None))]


def kind_of(cls: type) -> str:
    """The `kind` a component class declares; ConfigError saying how to declare one."""
    field = getattr(cls, "model_fields", {}).get("kind")
    kind = getattr(field, "default", None)
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"cannot register {cls.__name__}: give it a kind field, e.g. "
                          f"kind: Literal['my-kind'] = 'my-kind'")
    return kind


def register(cls: type) -> type:
    """Class decorator: make a component reachable by its `kind` from spec files, the CLI and
    `tts show`, in every role its methods fill. Re-registering the same class name (a notebook
    cell run twice) replaces it; another class under a taken kind is a ConfigError."""
    kind = kind_of(cls)
    roles = roles_of(cls)
    if not roles:
        raise ConfigError(f"cannot register {cls.__name__}: it has none of the methods "
                          f"{', '.join(m for _, m in ROLES.values())}")
    for role in roles:
        taken = _KINDS[role].get(kind)
        if taken is not None and taken.__qualname__ != cls.__qualname__:
            raise ConfigError(f"cannot register {cls.__name__} as {role} kind {kind!r}: "
                              f"{taken.__module__}.{taken.__qualname__} has it; choose another kind")
        _KINDS[role][kind] = cls
    return cls


def load_plugin(module: str) -> None:
    """Import a module that registers components (`tts --plugin mymod run ...`): a module name
    (looked up on sys.path and in the current directory) or a path to a .py file."""
    import sys
    from pathlib import Path

    _load()  # the built-ins first, so a plugin's kind that clashes with one is reported
    try:
        if module.endswith(".py") or "/" in module:
            path = Path(module)
            if not path.is_file():
                raise ConfigError(f"plugin file {module!r} does not exist")
            from importlib.util import module_from_spec, spec_from_file_location

            spec = spec_from_file_location(f"tts_plugin_{path.stem}", path)
            loaded = module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[spec.name] = loaded  # type: ignore[union-attr]
            spec.loader.exec_module(loaded)  # type: ignore[union-attr]
            return
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.append(str(Path.cwd()))
        import_module(module)
    except ImportError as exc:
        raise ConfigError(f"cannot import plugin module {module!r}: {exc}; check the name and that it is "
                          f"on PYTHONPATH or in the current directory") from None


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:  # by name, so the registry does not import its own users
        import_module(module)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def kinds(role: str) -> list[str]:
    """The registered kinds of `role`, sorted."""
    _load()
    return sorted(_KINDS[role])


def component_class(role: str, kind: str) -> type:
    """The class registered as `kind` in `role`; ConfigError naming the allowed kinds."""
    _load()
    if kind not in _KINDS[role]:
        raise ConfigError(f"unknown {role} kind {kind!r}; allowed: {', '.join(sorted(_KINDS[role]))}")
    return _KINDS[role][kind]


def find_class(kind: str, roles: tuple[str, ...] = tuple(ROLES)) -> tuple[str, type] | None:
    """(role, class) of the first of `roles` that has `kind`, or None."""
    _load()
    for role in roles:
        if kind in _KINDS[role]:
            return role, _KINDS[role][kind]
    return None


def classes(role: str) -> dict[str, type]:
    """kind -> class for `role` (a copy)."""
    _load()
    return dict(_KINDS[role])


def build(role: str, spec: Any) -> Any:
    """A component of `role` from an instance (checked and passed through), a kind name, or a
    mapping with a `kind`; ConfigError naming the role, the kind and the allowed kinds."""
    if not isinstance(spec, dict | str):
        if role not in roles_of(spec):
            raise ConfigError(f"a {role} is needed here, got {type(spec).__name__} "
                              f"(it has no {ROLES[role][1]} method); allowed kinds: {', '.join(kinds(role))}")
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    kind = spec.get("kind")
    if not isinstance(kind, str):
        raise ConfigError(f"a {role} spec needs a 'kind'; allowed: {', '.join(kinds(role))}")
    return component_class(role, kind).model_validate(spec)  # errors: ConfigError, from Config.__init__


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


def _label(cls: type) -> str:
    """How errors name a component: its role and kind ("selector 'rtv'"), else its class."""
    field = getattr(cls, "model_fields", {}).get("kind")
    kind = getattr(field, "default", None)
    roles = roles_of(cls)
    return f"{roles[0] if roles else 'component'} {kind!r}" if isinstance(kind, str) else cls.__name__


def _field(role: str, value: Any, info: ValidationInfo) -> Any:
    if value is None:
        return None
    try:
        return build(role, value)
    except ConfigError as exc:
        raise ConfigError(f"field '{info.field_name}': {exc}") from None


def role_field(role: str) -> Any:
    """The type of a config field that holds a component of `role` (or None)."""
    return Annotated[SerializeAsAny[Any], BeforeValidator(partial(_field, role))]


StrategyField = role_field("strategy")
SelectorField = role_field("selector")
ScorerField = role_field("scorer")
SummarizerField = role_field("summarizer")
TestWriterField = role_field("test-writer")

__all__ = [
    "BUILTIN_MODULES", "ENTRY_POINT_GROUP", "Component", "Config", "ScorerField", "SelectorField",
    "StrategyField", "SummarizerField", "TestWriterField", "build", "classes", "component_class",
    "component_from_spec", "components", "describe_validation_error", "find_class", "kind_of", "kinds", "load_plugin",
    "needs", "register", "role_field", "roles_of",
]


def component_from_spec(spec: object, role: str | None = None) -> object:
    """A component from an instance, a kind name, or a mapping with a `kind` (see `build`); without a
    `role`, the first of selector, scorer, summarizer, test-writer that has the kind."""
    if role is None:
        kind = spec if isinstance(spec, str) else spec.get("kind") if isinstance(spec, dict) else None
        found = find_class(kind, ("selector", "scorer", "summarizer", "test-writer")) if isinstance(kind, str) else None
        role = found[0] if found else "selector"
    return build(role, spec)

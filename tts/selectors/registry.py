"""Selectors, scorers and summarizers described as data.

Each concrete component is a frozen pydantic config with a `kind`; `@register_component` makes
it reachable from spec files and the CLI. A strategy field that holds one uses `SelectorField`,
`ScorerField` or `SummarizerField`: they accept an instance, a mapping with a `kind`, or a bare
kind name (`"majority"`, `"rtv"`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SerializeAsAny

from tts.errors import ConfigError

_COMPONENTS: dict[str, type] = {}


class Component(BaseModel):
    """Base of every selector, scorer and summarizer config: frozen, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    prompts: dict[str, str] = Field(default_factory=dict)
    """Per-instance prompt overrides: template name -> other template name or literal Jinja text."""


def register_component(cls: type) -> type:
    """Class decorator: make a component reachable by its `kind`."""
    _COMPONENTS[cls.model_fields["kind"].default] = cls
    return cls


def _load_builtins() -> None:
    # the packages import every built-in component module
    import tts.selectors
    import tts.summarizers  # noqa: F401


def component_kinds() -> list[str]:
    _load_builtins()
    return sorted(_COMPONENTS)


def component_from_spec(spec: Any) -> Any:
    """A component from an instance (passed through), a kind name, or a mapping with a `kind`."""
    if isinstance(spec, BaseModel) or callable(getattr(spec, "select", None)) or callable(getattr(spec, "score", None)):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"a selector spec must be a kind name or a mapping with a 'kind', got {type(spec).__name__}")
    _load_builtins()
    from tts.spec import build_from_spec

    return build_from_spec(_COMPONENTS, spec, "selector")


def _nested(value: Any) -> Any:
    return component_from_spec(value) if isinstance(value, dict | str) else value


# Types for config fields that hold a component (accept an instance, a mapping or a kind name).
SelectorField = Annotated[SerializeAsAny[Any], BeforeValidator(_nested)]
ScorerField = Annotated[SerializeAsAny[Any], BeforeValidator(_nested)]
SummarizerField = Annotated[SerializeAsAny[Any], BeforeValidator(_nested)]

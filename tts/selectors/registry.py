"""Selectors, scorers and summarizers are registered in the one registry, `tts.registry`; these
names stay importable from here."""

from tts.registry import Component, ScorerField, SelectorField, SummarizerField, build, find_class, kinds, register


def component_from_spec(spec: object, role: str | None = None) -> object:
    """A component from an instance, a kind name, or a mapping with a `kind` (see `tts.registry.build`);
    without a `role`, the first of selector, scorer, summarizer, test-writer that has the kind."""
    if role is None:
        kind = spec if isinstance(spec, str) else spec.get("kind") if isinstance(spec, dict) else None
        found = find_class(kind, ("selector", "scorer", "summarizer", "test-writer")) if isinstance(kind, str) else None
        role = found[0] if found else "selector"
    return build(role, spec)


register_component = register

__all__ = ["Component", "ScorerField", "SelectorField", "SummarizerField", "component_from_spec", "kinds",
           "register_component"]

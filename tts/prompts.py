"""Prompt templates: Jinja2 files in `prompts/` (shipped inside the wheel), StrictUndefined.

A strategy's `prompts` field overrides a template by name: the value is either another
template name (`"my_judge.j2"`, looked up in `prompts/` or as a path) or literal template text.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from tts.errors import ConfigError

_HERE = Path(__file__).resolve().parent


def prompts_dir() -> Path:
    """The installed copy (inside the wheel) or, in a source checkout, the top-level folder."""
    for candidate in (_HERE / "_prompts", _HERE.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the prompts folder is missing from this install; reinstall tts")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(prompts_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


@lru_cache(maxsize=256)
def _template(name: str, text: str | None) -> jinja2.Template:
    env = _env()
    if text is not None:
        return env.from_string(text)
    path = Path(name)
    if path.suffix == ".j2" and path.is_file() and (path.is_absolute() or not (prompts_dir() / name).is_file()):
        return env.from_string(path.read_text())
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"prompt template {name!r} not found in {prompts_dir()}") from None


def _resolve(name: str, overrides: dict[str, str] | None) -> jinja2.Template:
    """Template `name`, or what a per-instance override puts in its place (compiled once)."""
    override = (overrides or {}).get(name) or (overrides or {}).get(name.removesuffix(".j2"))
    if override is None:
        return _template(name, None)
    if override.endswith(".j2") and "\n" not in override:
        return _template(override, None)
    return _template(name, override)


def render(name: str, overrides: dict[str, str] | None = None, **variables: Any) -> str:
    """Render template `name` (e.g. "judge_pairwise.j2"), honouring a per-instance override."""
    tpl = _resolve(name, overrides)
    try:
        return tpl.render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"prompt {name!r}: {exc}; the template uses a variable this step does not provide") from None


_RENDERED = re.compile(r"""render\(\s*["']([\w./-]+\.j2)["']""")


@lru_cache(maxsize=512)
def _rendered_in(module: str) -> tuple[str, ...]:
    """The template names a module passes to `render` literally (read from its source, once)."""
    try:
        return tuple(dict.fromkeys(_RENDERED.findall(Path(sys.modules[module].__file__ or "").read_text())))
    except (KeyError, OSError, TypeError, ValueError):
        return ()


def warm(components: Iterable[Any]) -> None:
    """Compile ahead the templates these components render (the names their classes' modules pass
    to `render`, through each one's `prompts` overrides), so that a run's first judge or distill
    call does not wait ~2 ms for a compile between two waves of calls. Best effort: a template that
    does not compile is left for `render` to report when it is used."""
    for part in components:
        overrides = getattr(part, "prompts", None)
        modules = {cls.__module__ for cls in type(part).__mro__ if cls.__module__.split(".")[0] not in _NOT_COMPONENTS}
        for name in (n for m in modules for n in _rendered_in(m)):
            try:
                _resolve(name, overrides if isinstance(overrides, dict) else None)
            except (ConfigError, jinja2.TemplateError, OSError):
                pass


_NOT_COMPONENTS = frozenset({"builtins", "pydantic", "typing", "abc"})
"""Where a component's base classes come from that renders nothing (their sources are not read)."""

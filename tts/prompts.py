"""Prompt templates: Jinja2 files in `prompts/` (shipped inside the wheel), StrictUndefined.

A strategy's `prompts` field overrides a template by name: the value is either another
template name (`"my_judge.j2"`, looked up in `prompts/` or as a path) or literal template text.
"""

from __future__ import annotations

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


def render(name: str, overrides: dict[str, str] | None = None, **variables: Any) -> str:
    """Render template `name` (e.g. "judge_pairwise.j2"), honouring a per-instance override."""
    override = (overrides or {}).get(name) or (overrides or {}).get(name.removesuffix(".j2"))
    if override is None:
        tpl = _template(name, None)
    elif override.endswith(".j2") and "\n" not in override:
        tpl = _template(override, None)
    else:
        tpl = _template(name, override)
    try:
        return tpl.render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"prompt {name!r}: {exc}; the template uses a variable this step does not provide") from None

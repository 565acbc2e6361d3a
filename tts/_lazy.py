"""Lazy exports for a package's `__init__`: names resolve to their modules on first use, so
importing the package imports nothing heavy (and nothing optional)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: `exports[name]` is the module that defines `name`;
    the value is cached in the package's namespace after the first lookup."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__

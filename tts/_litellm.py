"""Import litellm lazily, offline-safe and quiet, without changing the user's environment.

litellm downloads its price table at import time unless `LITELLM_LOCAL_MODEL_COST_MAP=True`.
On a machine with no internet that import hangs for seconds and then falls back to the packaged
table anyway, so we ask for the packaged table, but only for the duration of the import: when
the user has not set the variable we set it, import, and remove it again; when they have set
it (to anything), their value wins. Any other variable litellm sets while importing is put back
too, so `os.environ` is exactly as it was.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any

_COST_MAP_VAR = "LITELLM_LOCAL_MODEL_COST_MAP"
_lock = threading.Lock()
_module: Any = None
_table: PackagedPrices | None = None


def import_litellm() -> Any:
    """The `litellm` module, imported once with the packaged price table and debug banners off."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is not None:
            return _module
        before = dict(os.environ)
        if _COST_MAP_VAR not in before:
            os.environ[_COST_MAP_VAR] = "True"
        try:
            import litellm
        finally:
            _restore_environ(before)
        # litellm's own switches: no "Give Feedback / Get Help" banners, no debug prints.
        # Logging handlers and levels (ours and the root's) are left alone.
        litellm.suppress_debug_info = True
        litellm.set_verbose = False
        _module = litellm
        return litellm


def is_imported() -> bool:
    return _module is not None


def _restore_environ(before: dict[str, str]) -> None:
    for key in [k for k in os.environ if k not in before]:
        del os.environ[key]
    for key, value in before.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


class PackagedPrices:
    """litellm's packaged price table (a few MB of JSON, hundreds of thousands of objects once
    parsed), of which a run needs one or two entries: kept as the file's bytes (never decoded
    whole), each entry parsed when first asked for, found by its top-level key, so the first
    call of a run stays cheap."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._found: dict[str, Any] = {}
        # litellm writes the table with 4-space indents; any other layout is parsed whole
        self._whole: dict[str, Any] | None = None if data.startswith(b'{\n    "') else json.loads(data or b"{}")

    def get(self, model: str, default: Any = None) -> Any:
        if self._whole is not None:
            return self._whole.get(model, default)
        if model not in self._found:
            key = json.dumps(model).encode()
            at = self._data.find(b"\n    " + key + b": ")
            entry = None
            if at >= 0:
                start = at + len(key) + 7  # past `\n    "key": `
                # an object ends at the first brace indented like its key; anything else on its line
                end = self._data.find(b"\n    }" if self._data[start:start + 1] == b"{" else b"\n", start)
                text = self._data[start:end + 6 if end >= 0 else len(self._data)].decode("utf-8")
                entry, _ = json.JSONDecoder().raw_decode(text)
            self._found[model] = entry
        entry = self._found[model]
        return default if entry is None else entry


def packaged_price_table() -> PackagedPrices:
    """The price table that ships inside the litellm package, read without importing litellm
    (whose import costs seconds and leaves ~300k objects for the garbage collector to walk).
    Empty when litellm is not installed."""
    global _table
    if _table is None:
        spec = importlib.util.find_spec("litellm")  # locates the package without running it
        data = b""
        for folder in (spec.submodule_search_locations or []) if spec else []:
            path = Path(folder) / "model_prices_and_context_window_backup.json"
            if path.exists():
                data = path.read_bytes()
                break
        _table = PackagedPrices(data)
    return _table


def table_cost(table: Any, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for a call from a litellm-format price table; None when the model has no prices there.
    A provider prefix ("openai/gpt-4o-mini") is tried with and without."""
    entry = table.get(model)
    if entry is None and "/" in model:
        entry = table.get(model.split("/", 1)[1])
    if not isinstance(entry, dict):
        return None
    per_prompt, per_completion = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if per_prompt is None and per_completion is None:
        return None
    return prompt_tokens * float(per_prompt or 0.0) + completion_tokens * float(per_completion or 0.0)

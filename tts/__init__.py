"""tts: test-time scaling strategies over any chat-completion backend.

Importing this package has no side effects: no prints, files, network or environment changes.
Heavy modules (litellm, aiohttp, rich) load only when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it; resolved lazily so `import tts` stays cheap and quiet.
_EXPORTS: dict[str, str] = {
    # records
    "Message": "tts.records", "Usage": "tts.records", "Completion": "tts.records", "Task": "tts.records",
    "Candidate": "tts.records", "Trajectory": "tts.records", "TrajectorySummary": "tts.records",
    "RunResult": "tts.records", "CallRecord": "tts.records", "Evidence": "tts.records", "Step": "tts.records",
    # the seam
    "Backend": "tts.backend", "ChatRequest": "tts.backend",
    "RunContext": "tts.context", "SamplingDefaults": "tts.context",
    # running
    "run_task": "tts.run", "run_many": "tts.run", "run_sync": "tts.run",
    # errors
    "TTSError": "tts.errors", "UsageError": "tts.errors", "ConfigError": "tts.errors",
    "TaskFileError": "tts.errors", "MissingDependency": "tts.errors", "BackendError": "tts.errors",
    "TransientError": "tts.errors", "PermanentError": "tts.errors", "RateLimited": "tts.errors",
    "ServerError": "tts.errors", "CallTimeout": "tts.errors", "ConnectionFailed": "tts.errors",
    "MalformedResponse": "tts.errors", "AuthError": "tts.errors", "BudgetExceeded": "tts.errors",
    "ParseError": "tts.errors",
    # strategies
    "Strategy": "tts.strategies.base", "SingleSample": "tts.strategies.single",
    "SelfConsistency": "tts.strategies.self_consistency",
    # answers
    "extract_answer": "tts.answers", "is_correct": "tts.answers",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tts' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

"""Every exception `tts` raises, in one tree.

    TTSError
    ├── UsageError              a user mistake: bad config, bad task file, missing key (CLI exit 2)
    │   ├── ConfigError         a config/spec field is wrong (names the field and allowed values)
    │   │   └── TaskDataError   one task's own data cannot serve what was configured (a bad check
    │   │                       expression, no reference answer): fails that task, not the run
    │   ├── TaskFileError       a task file line is malformed (names file and line)
    │   ├── MissingDependency   an optional extra is not installed (names the pip command)
    │   └── RequestError        a request to `tts serve` cannot be served as sent (HTTP 4xx)
    ├── BackendError            the model call failed
    │   ├── TransientError      worth retrying
    │   │   ├── RateLimited     429; carries retry_after seconds when the server sent one
    │   │   ├── ServerError     5xx
    │   │   ├── CallTimeout     the per-call timeout fired
    │   │   ├── ConnectionFailed
    │   │   └── MalformedResponse  the body could not be parsed
    │   └── PermanentError      never retried: the caller's 4xx mistake
    │       └── AuthError       401/403 or a missing API key
    ├── BudgetExceeded          a cap on calls, tokens or USD was reached; carries usage so far
    └── ParseError              model output could not be parsed (a vote, a grade, JSON)
"""

from __future__ import annotations

from typing import Any

from tts.redact import redact


class TTSError(Exception):
    """Base of every error raised by tts. Its message is redacted when it is made (`tts.redact`):
    a provider's error text may quote the key it was sent."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a, fresh=True) if isinstance(a, str) else a for a in args))


class UsageError(TTSError):
    """The user asked for something that cannot work; the message says how to fix it."""


class ConfigError(UsageError):
    pass


class TaskFileError(UsageError):
    pass


class TaskDataError(ConfigError):
    """One task's data is wrong for what was asked of it; `run_task` fails that task (status
    "error", the message in `error`) and the other tasks go on."""


class MissingDependency(UsageError):
    pass


class RequestError(UsageError):
    """`status` is the HTTP status to answer with; `param` names the request field at fault."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code


class BackendError(TTSError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(BackendError):
    pass


class RateLimited(TransientError):
    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(TransientError):
    pass


class CallTimeout(TransientError):
    pass


class ConnectionFailed(TransientError):
    pass


class MalformedResponse(TransientError):
    pass


class PermanentError(BackendError):
    pass


class AuthError(PermanentError):
    pass


class BudgetExceeded(TTSError):
    """A cap was reached before a call could start. The call was not sent.

    `usage` is what had been spent when the cap was hit; `partial` is filled by the run
    context with the candidates completed so far (a `RunResult`), when there is one.
    """

    def __init__(self, message: str, *, usage: Any = None, partial: Any = None) -> None:
        super().__init__(message)
        self.usage = usage
        self.partial = partial


class ParseError(TTSError):
    pass

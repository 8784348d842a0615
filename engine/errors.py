"""The engine's own exceptions: each carries a human message; the web layer maps them to pages
and JSON errors in one place (`http_status` is the status that mapping uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class EngineError(Exception):
    http_status = 400
    code = "engine_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class DatabaseUnavailableError(EngineError):
    """The database cannot serve right now (unreachable, locked past its timeout, out of space):
    a transient condition, so callers are told to retry (`retry_after` seconds)."""

    http_status = 503
    code = "database_unavailable"
    retry_after = 5


class NotFoundError(EngineError):
    http_status = 404
    code = "not_found"


class PermissionDeniedError(EngineError):
    http_status = 403
    code = "forbidden"


class TooLargeError(EngineError):
    """An upload larger than the configured limit."""

    http_status = 413
    code = "too_large"


class ConflictError(EngineError):
    """Someone else changed the same thing first (claimed, completed, or a concurrent write)."""

    http_status = 409
    code = "conflict"


class FormValidationError(EngineError):
    """Submitted data does not fit the task's form; `details` names each bad field."""

    http_status = 422
    code = "invalid_form"


ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One deployment finding, printed as `FILE:LINE: ELEMENT: message`.

    An error refuses the file; a warning (`FILE:LINE: ELEMENT: warning: message`) names something
    ignored or defaulted at run time and lets the file deploy."""

    file: str
    line: int | None
    element: str
    message: str
    severity: str = ERROR

    @property
    def is_warning(self) -> bool:
        return self.severity == WARNING

    def __str__(self) -> str:
        prefix = "warning: " if self.is_warning else ""
        return f"{self.file}:{self.line if self.line is not None else '?'}: {self.element}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "element": self.element, "message": self.message}


class DeploymentError(EngineError):
    """A file was refused; `problems` lists every reason with file, line and element."""

    http_status = 422
    code = "invalid_definition"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else "deployment refused"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more, [p.as_dict() for p in self.problems])


class InvalidStateError(EngineError):
    """The operation does not fit the current state (e.g. retry without an incident)."""

    http_status = 409
    code = "invalid_state"


class DecisionFailedError(EngineError):
    """A decision could not decide (hit policy violated, FEEL error); the message says why."""

    http_status = 422
    code = "decision_failed"

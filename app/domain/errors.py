"""Domain errors. They know nothing of HTTP; the web layer maps each class to a status.

Every error has a stable machine-readable ``code`` (class attribute), a human
``message`` and ``details`` (``None`` unless the subclass says otherwise).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class of every error the domain and service layers raise on purpose."""

    code: str = "domain_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ValidationFailed(DomainError):
    """Input was rejected. ``details`` lists every problem found.

    Each detail is ``{"line": int | None, "field": str, "message": str}``;
    ``line`` is the 1-based line of an imported file, ``None`` elsewhere.
    """

    code = "validation_failed"
    details: list[dict[str, Any]]

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, list(details or []))

    @classmethod
    def single(cls, field: str, message: str, line: int | None = None) -> ValidationFailed:
        """One problem with one field: the message names the field."""
        return cls(f"{field}: {message}", [{"line": line, "field": field, "message": message}])


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, different resubmission...)."""

    code = "conflict"


class Expired(Conflict):
    """A lease or assignment ran out before the request arrived."""

    code = "expired"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    code = "forbidden"


class RateLimited(DomainError):
    """Too many requests; try again later."""

    code = "rate_limited"

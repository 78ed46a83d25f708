"""Domain errors. They know nothing of HTTP; the web layer maps each class to a status.

Every error has a stable machine-readable ``code`` (class attribute), a human
``message`` and ``details`` (``None`` unless the subclass says otherwise).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Detail = dict[str, Any]
"""One problem: ``{"line": int | None, "field": str, "message": str}`` (SPEC §7)."""


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
    details: list[Detail]

    def __init__(self, message: str, details: list[Detail] | None = None) -> None:
        super().__init__(message, list(details or []))

    @classmethod
    def single(cls, field: str, message: str, line: int | None = None) -> ValidationFailed:
        """One problem with one field: the message names the field."""
        problems = Problems()
        problems.add(field, message, line)
        return problems.error()


def detail(field: str, message: str, line: int | None = None) -> Detail:
    """One entry of ``ValidationFailed.details``."""
    return {"line": line, "field": field, "message": message}


def summary(details: list[Detail], *, prefix: str = "", truncated: bool = False) -> str:
    """The one summary of a list of problems: the first in full, then how many more.

    ``line 3: ranking: tier 1 is empty (and 2 more problem(s))``; ``truncated`` says the
    list stopped at a cap, so there may be more than it holds (``2+ more``).
    """
    first = details[0]
    where = f"line {first['line']}: " if first.get("line") else ""
    text = f"{prefix}{where}{first['field']}: {first['message']}"
    more = len(details) - 1
    if more or truncated:
        text += f" (and {more}{'+' if truncated else ''} more problem(s))"
    return text


class Problems:
    """Collects every problem of one request (or one record), so one answer lists them all.

    ``add`` each problem as it is found, then ``raise_if_any``: nothing happens when
    there were none, else one ValidationFailed carries them all with the one summary.
    """

    def __init__(self, line: int | None = None) -> None:
        self.line = line
        self.details: list[Detail] = []

    def add(self, field: str, message: str, line: int | None = None) -> None:
        self.details.append(detail(field, message, self.line if line is None else line))

    def extend(self, details: Iterable[Detail]) -> None:
        self.details.extend({"line": d.get("line"), **d} for d in details)

    def add_located(
        self,
        errors: Iterable[Mapping[str, Any]],
        *,
        prefix: str = "",
        skip: Collection[str] = ("__root__",),
        whole: str = "body",
    ) -> None:
        """Errors shaped ``{"loc": (...), "msg": str}`` (pydantic's): the field is the dotted
        location after ``prefix``, leaving out the parts in ``skip``; an empty location
        names ``prefix`` itself, or ``whole``."""
        for err in errors:
            path = ".".join(str(p) for p in err.get("loc", ()) if str(p) not in skip)
            self.add(prefix + path if path else prefix.rstrip(".") or whole, err["msg"])

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Run a check that raises ValidationFailed and keep its problems instead."""
        try:
            yield
        except ValidationFailed as exc:
            self.extend(exc.details)

    def __bool__(self) -> bool:
        return bool(self.details)

    def __len__(self) -> int:
        return len(self.details)

    def __iter__(self) -> Iterator[Detail]:
        return iter(self.details)

    def error(self, *, prefix: str = "", truncated: bool = False) -> ValidationFailed:
        return ValidationFailed(
            summary(self.details, prefix=prefix, truncated=truncated), self.details
        )

    def raise_if_any(self, *, prefix: str = "", truncated: bool = False) -> None:
        if self.details:
            raise self.error(prefix=prefix, truncated=truncated)


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, different resubmission...)."""

    code = "conflict"


class Expired(Conflict):
    """A lease or assignment ran out before the request arrived."""

    code = "expired"


class ProjectClosed(Conflict):
    """The project is not active (draft, paused or archived): no tasks are handed out."""

    code = "project_closed"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    code = "forbidden"


class RateLimited(DomainError):
    """Too many requests; try again later."""

    code = "rate_limited"


class TooLarge(DomainError):
    """The input is larger than the limit for it (413); nothing was written."""

    code = "too_large"

"""HTML-form plumbing shared by the pages: the submitted form as a dependency, the toast
that htmx shows, and a refusal's details as messages next to the form's fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData

from app.domain.errors import Detail


async def _read_form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_read_form)]
"""The submitted form, read before a (sync) handler runs in the thread pool."""


def toast(
    message: str, level: str = "ok", *, details: Any = None, events: dict[str, Any] | None = None
) -> dict[str, str]:
    """The ``HX-Trigger`` header that shows a toast (and fires any other ``events``).
    An error toast (``level="error"``) carries the refusal's ``details``."""
    payload: dict[str, Any] = {"level": level, "message": message}
    if level == "error":
        payload["details"] = details
    return {"HX-Trigger": json.dumps({"prefloop:toast": payload, **(events or {})})}


def field_errors(
    details: Iterable[Detail], message: str = "", field_of: Callable[[str], str] = str
) -> dict[str, str]:
    """A refusal's problems as ``{form field: message}``: ``field_of`` maps each detail's
    field to the form's; two problems of one field are joined. With no details, the
    ``message`` goes to ``"form"``."""
    errors: dict[str, str] = {}
    for detail in details:
        field = field_of(str(detail.get("field", "form")))
        text = str(detail.get("message", ""))
        errors[field] = f"{errors[field]} {text}" if field in errors else text
    return errors or {"form": message}

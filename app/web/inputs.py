"""The boundary's input rules, defined once (SPEC §7, issue 11): what a client sends is
refused with a 422 naming the field before it can reach the database as a value
PostgreSQL cannot hold.

- ``DbId``: an id, bounded to the ``bigint`` of its column (path, query and body alike);
  ``Int32`` and ``PageNo`` bound the ``integer`` values. A huge unknown id is a 404 or a
  422, never ``bigint out of range``.
- ``refuse_nul``: the one NUL check. ``nul_guard`` applies it to every path and query
  parameter, form field and JSON body value of every route (installed on the app), so a
  new route is covered without doing anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from json import JSONDecodeError
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import Request
from starlette.datastructures import UploadFile

from app.domain.errors import Problems

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
DbId = Annotated[int, Ge(1), Le(BIGINT_MAX)]
"""A row id: 1 to the largest PostgreSQL ``bigint``."""
Int32 = Annotated[int, Ge(0), Le(INT_MAX)]
"""A count or step stored in an ``integer`` column."""
PageNo = Annotated[int, Ge(1), Le(INT_MAX)]
"""A 1-based page number."""


def whole_number(text: str, maximum: int = BIGINT_MAX) -> int | None:
    """A form field's whole number from 0 to ``maximum``, else None: only ASCII digits
    (``"²".isdigit()`` is true, yet ``int("²")`` fails) and never a 5 000-digit parse."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None


NUL_MESSAGE = "must not contain the NUL character (\\u0000)"


def nul_fields(value: Any, where: str = "") -> Iterator[str]:
    """The path (``a.b.0``) of every string inside ``value`` that holds NUL, keys
    included; iterative, so any nesting depth is safe."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                yield path
        elif isinstance(item, Mapping):
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key:
                    yield name
                stack.append((name, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), c) for i, c in enumerate(item))


def refuse_nul(problems: Problems, value: Any, where: str = "") -> None:
    """Add one problem per string holding NUL in ``value``."""
    for field in sorted(set(nul_fields(value, where))):
        problems.add(field or "body", NUL_MESSAGE)


async def nul_guard(request: Request) -> None:
    """App dependency: refuse NUL in path, query, form and JSON values, naming the field."""
    problems = Problems()
    refuse_nul(problems, dict(request.path_params))
    for key, value in request.query_params.multi_items():
        refuse_nul(problems, value, key)
        refuse_nul(problems, key, key)
    for where, value in await _body(request):
        refuse_nul(problems, value, where)
    problems.raise_if_any()


def credentialed(request: Request) -> bool:
    """Whether the request carries any credentials (a bearer header or a session user)."""
    return bool(request.headers.get("authorization") or request.session.get("uid"))


async def _body(request: Request) -> list[tuple[str, Any]]:
    """The parsed body of an unsafe request. Without credentials only a small urlencoded
    form (the login form) is read: authentication refuses the rest without the body."""
    kind = request.headers.get("content-type", "")
    urlencoded = kind.startswith("application/x-www-form-urlencoded")
    if request.method in ("GET", "HEAD", "OPTIONS") or not (urlencoded or credentialed(request)):
        return []
    if kind.startswith("application/json"):
        try:
            return [("", await request.json())]
        except (JSONDecodeError, UnicodeDecodeError, RecursionError):
            return []  # FastAPI answers a malformed body itself, with the app's shape
    if urlencoded or kind.startswith("multipart/form-data"):
        form = await request.form()
        return [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
    return []

"""The labeling loop's fast lane (issue 13): ``GET /api/v1/projects/{id}/tasks/next`` and
``POST /api/v1/assignments/{id}/judgment`` answered without FastAPI's routing, dependency
resolution and middleware stack, which cost most of the server's CPU per judgment.

It takes only the plain case, and takes it whole: a bearer token, no cookie, no query
string, and for a judgment a JSON body within the body limit that parses, holds no NUL
and validates as ``JudgmentIn``. Then it resolves the token as ``current_user`` does (the
token cache, else ``user_for_token``), calls the route's service (``next_task``,
``submit_judgment``) in one worker-thread hop, answers a domain error, an unknown token or
an unreachable database with the app's own handlers, and serializes the route's answer
model: the bytes are the route's (``tests/test_hot_lane.py`` compares them). Anything
else goes to the app as if the lane were not there, a body it read replayed unchanged: a
cookie-authenticated browser, another scheme, a malformed body (its 422 is the route's).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.errors import DomainError
from app.services.accounts.tokens import remembered_user, user_for_token
from app.services.labeling.assignment import next_task
from app.services.labeling.checks import JudgmentIn
from app.services.labeling.judgments import submit_judgment
from app.services.unit_of_work import DatabaseUnavailable
from app.web import errors
from app.web.api.labeling import JudgmentOut, TaskOut
from app.web.deps import UNKNOWN_TOKEN, NotAuthenticated, bearer_token, in_thread
from app.web.inputs import BIGINT_MAX, nul_fields

NEXT = re.compile(r"/api/v1/projects/([1-9][0-9]{0,18})/tasks/next")
JUDGMENT = re.compile(r"/api/v1/assignments/([1-9][0-9]{0,18})/judgment")


class HotLane:
    """ASGI middleware in front of the app's own (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = _take(scope)
        if taken is None:
            await self.app(scope, receive, send)
        else:
            handler, token, ident = taken
            await handler(self, scope, receive, send, token, ident)

    async def _next(
        self, scope: Scope, _receive: Receive, send: Send, token: str, project_id: int
    ) -> None:
        task = await _answer(scope, send, next_task, token, project_id)
        if task is None:
            await Response(status_code=204)(scope, _no_body, send)
        elif task is not _ANSWERED:
            await _send_model(scope, send, 200, TaskOut.model_validate(task))

    async def _judgment(
        self, scope: Scope, receive: Receive, send: Send, token: str, assignment_id: int
    ) -> None:
        received: list[Message] = []
        body = await self._judgment_body(scope, receive, received)
        if body is None:
            await self.app(scope, _replay(received, receive), send)
            return
        done = await _answer(scope, send, submit_judgment, token, assignment_id, body)
        if done is not _ANSWERED:
            await _send_model(scope, send, 201, JudgmentOut.model_validate(done))

    async def _judgment_body(
        self, scope: Scope, receive: Receive, received: list[Message]
    ) -> JudgmentIn | None:
        """The body as the route would take it, or None to leave it to the route (reading
        nothing when its headers already say so; what was read is in ``received``)."""
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "")
        length = headers.get("content-length", "")
        if kind.partition(";")[0].strip() != "application/json":
            return None
        if not (length.isascii() and length.isdigit()) or int(length) > self.max_body_bytes:
            return None
        raw = await _read_body(receive, received, self.max_body_bytes)
        if raw is None:
            return None
        try:
            parsed = json.loads(raw)
            if next(nul_fields(parsed), None) is not None:
                return None
            return JudgmentIn.model_validate(parsed)
        except (ValueError, RecursionError, ValidationError):
            return None


_ANSWERED = object()
_ROUTES = (("GET", NEXT, HotLane._next), ("POST", JUDGMENT, HotLane._judgment))


def _take(scope: Scope) -> tuple[Any, str, int] | None:
    """(the handler, the bearer token, the path's id) when the lane takes the request."""
    if scope["type"] != "http" or scope.get("query_string"):
        return None
    for method, pattern, handler in _ROUTES:
        if scope["method"] == method and (found := pattern.fullmatch(scope["path"])):
            ident = int(found.group(1))
            token = _bearer(scope) if ident <= BIGINT_MAX else None
            return None if token is None else (handler, token, ident)
    return None


def _bearer(scope: Scope) -> str | None:
    """The token of a cookie-less request with a well-formed bearer header, else None."""
    headers = Headers(scope=scope)
    if "cookie" in headers:
        return None
    try:
        return bearer_token(headers.get("authorization", ""))
    except NotAuthenticated:
        return None  # the route words the refusal


def _serve(scope: Scope, service: Any, token: str, *args: Any) -> Any:
    """``service(session, caller, *args)`` in a request session of its own (in a worker
    thread), the caller resolved as ``current_user`` resolves a bearer token."""
    session = scope["app"].state.sessionmaker()
    try:
        user = remembered_user(token) or user_for_token(session, token)
        if user is None:
            raise NotAuthenticated(UNKNOWN_TOKEN)
        return service(session, user, *args)
    finally:
        session.close()


async def _answer(scope: Scope, send: Send, service: Any, *args: Any) -> Any:
    """``service``'s result (see ``_serve``); a domain error, an unknown token or an
    unreachable database is answered by the app's own handler (then ``_ANSWERED``),
    anything else propagates."""
    try:
        return await in_thread(_serve, scope, service, *args)
    except DomainError as exc:
        response = await errors.on_domain_error(Request(scope), exc)
    except NotAuthenticated as exc:
        response = await errors.on_not_authenticated(Request(scope), exc)
    except DatabaseUnavailable as exc:
        response = await errors.on_database_unavailable(Request(scope), exc)
    await response(scope, _no_body, send)
    return _ANSWERED


async def _send_model(scope: Scope, send: Send, status: int, model: BaseModel) -> None:
    body = model.__pydantic_serializer__.to_json(model, by_alias=True)
    await Response(body, status_code=status, media_type="application/json")(scope, _no_body, send)


async def _read_body(receive: Receive, received: list[Message], limit: int) -> bytes | None:
    """The whole body, or None (a disconnect, or more than ``limit`` bytes)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` that first hands back the messages the lane already read."""
    pending = list(received)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}

"""Request bodies are bounded before anything reads them (issue 11, defect 3).

``BodyLimitMiddleware`` (inside the session middleware, so it sees the session):

- an unsafe ``/api/`` request with no credentials at all (no ``Authorization`` header, no
  logged-in session: no cookie, or one whose signature fails) is answered 401 before a byte
  of its body is read: no API operation accepts an anonymous write;
- an anonymous unsafe page request (a form post) is sent to ``/login`` (303; htmx: 401 with
  ``HX-Redirect``) on its first attempt to read the body, so nothing of it is read, unless
  its route is marked ``@public_form`` (the login and logout forms);
- a body over ``MAX_BODY_BYTES`` is a 413: when ``Content-Length`` says so, on the first
  attempt to read it (so nothing of it is read), else as soon as the bytes received pass
  the limit (chunked);
- routes marked ``@streams_body`` (the imports, which spool to disk under their own larger
  limit) read theirs unbounded here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.deps import NotAuthenticated
from app.web.errors import error_response
from app.web.inputs import credentialed

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def streams_body(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route that reads its (large) body as a stream under its own limit."""
    endpoint.streams_body = True  # type: ignore[attr-defined]
    return endpoint


def public_form(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a page route whose form works without a session (login, logout)."""
    endpoint.public_form = True  # type: ignore[attr-defined]
    return endpoint


class AnonymousBody(NotAuthenticated, HTTPException):
    """An anonymous caller's body, refused unread. ``NotAuthenticated``'s handler answers it
    (a redirect to /login); being an ``HTTPException`` too, it passes FastAPI's form parsing
    as it is (that turns any other error while reading a form into a 400)."""

    def __init__(self) -> None:
        HTTPException.__init__(self, 401, "log in first")

    def __str__(self) -> str:
        return self.detail


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if scope["path"].startswith("/api/") and not credentialed(request):
            response = error_response(
                request,
                401,
                "not_authenticated",
                "log in first",
                None,
                {"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        anonymous = not credentialed(request)
        limited = self._limited(scope, receive, _content_length(request), anonymous)
        await self.app(scope, limited, send)

    def _limited(self, scope: Scope, receive: Receive, announced: int, anonymous: bool) -> Receive:
        """``receive``, refusing past the limit. It is called once routing is done, so the
        route (``scope["endpoint"]``) is known: a streaming one reads unbounded here, and an
        anonymous caller reads nothing but a public form (the exception handler of
        ``NotAuthenticated`` sends the others to /login)."""
        received = 0

        async def limited() -> Message:
            nonlocal received
            endpoint = scope.get("endpoint")
            if anonymous and not getattr(endpoint, "public_form", False):
                raise AnonymousBody  # before a byte is read
            if getattr(endpoint, "streams_body", False):
                return await receive()
            if announced > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)  # before a byte is read
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        return limited


def _content_length(request: Request) -> int:
    """The announced length (a 30-digit one is huge, not a slow parse); 0 when absent."""
    value = request.headers.get("content-length", "")
    if not (value.isascii() and value.isdigit()):
        return 0
    return int(value) if len(value) < 19 else 2**63

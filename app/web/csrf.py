"""CSRF protection: a per-session token that every state-changing request authenticated
by the session cookie must echo, as the form field ``csrf_token`` or the header
``X-CSRF-Token`` (htmx sends the header, set once on <body>). Bearer-token requests are
exempt: a browser never attaches those by itself."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

from app.domain.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_guard(request: Request) -> None:
    """Dependency: refuse an unsafe cookie-authenticated request without the right token.
    A request with no credentials at all passes: authentication answers it (401, or a
    redirect to /login); the login form has its own guard, below."""
    if request.method in SAFE_METHODS or request.headers.get("authorization"):
        return
    if request.session.get("uid") is not None:
        await login_csrf_guard(request)


async def login_csrf_guard(request: Request) -> None:
    """Dependency of the login form: the token is checked with or without a session user
    (a forged login would put the victim in the attacker's account)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get(FIELD)
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise Forbidden("The form's CSRF token is missing or out of date. Reload the page.")

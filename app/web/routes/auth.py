"""Login and logout pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.domain.errors import RateLimited, ValidationFailed
from app.services.accounts import sessions, users
from app.web.body_limit import public_form
from app.web.csrf import csrf_guard, login_csrf_guard
from app.web.deps import OptionalUser, SessionDep, SettingsDep
from app.web.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after login."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or urlsplit(target).netloc
    ):
        return "/"
    return target


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login")
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", dependencies=[Depends(login_csrf_guard)])
@public_form
def login(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    policy = users.LoginPolicy(settings.login_max_failures, settings.login_window_seconds)
    try:
        user = users.login(db, username, password, _client_address(request), policy)
    except (ValidationFailed, RateLimited) as exc:
        status = 429 if isinstance(exc, RateLimited) else 401
        ctx = {"next": _safe_next(next), "error": exc.message, "username": username}
        return render(request, "login.html", ctx, status_code=status)
    request.session.clear()
    request.session["uid"] = user.id
    request.session["sid"] = sessions.start_session(db, user, settings.session_max_age)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(csrf_guard)])
@public_form
def logout(request: Request, db: SessionDep) -> Response:
    """Ends the session on the server too: a copy of the cookie is refused from now on."""
    sessions.end_session(db, request.session.get("sid"))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)

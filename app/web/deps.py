"""Annotated dependency aliases, so route signatures read like the spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from app.db.models import User
from app.services.accounts import policy
from app.services.accounts.tokens import user_for_token
from app.services.unit_of_work import DbSession, session_scope
from app.settings import Settings
from app.web.csrf import csrf_guard


class NotAuthenticated(Exception):
    """No valid session or token: 401 for the API, a redirect to /login for pages."""


def get_db(request: Request) -> Iterator[DbSession]:
    yield from session_scope(request.app.state.sessionmaker)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[DbSession, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("use 'Authorization: Bearer <token>'")
    return token.strip()


def current_user(request: Request, db: SessionDep, _: None = Depends(csrf_guard)) -> User:
    """The caller, from a bearer token or the session cookie (CSRF-checked)."""
    token = _bearer(request)
    if token is not None:
        user = user_for_token(db, token)
        if user is None:
            raise NotAuthenticated("unknown or revoked token")
        return user
    user_id = request.session.get("uid")
    user = db.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.is_active or user.is_external:
        raise NotAuthenticated("log in first")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def admin_user(user: CurrentUser) -> User:
    policy.require_admin(user)
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def optional_user(request: Request, db: SessionDep) -> User | None:
    """The logged-in user of a page that also works anonymously (the login page)."""
    user_id = request.session.get("uid")
    return db.get(User, user_id) if isinstance(user_id, int) else None


OptionalUser = Annotated[User | None, Depends(optional_user)]

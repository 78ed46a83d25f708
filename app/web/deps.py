"""Annotated dependency aliases, so route signatures read like the spec."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from app.db.models import User
from app.services.accounts import policy, sessions
from app.services.accounts.tokens import cached_user_for_token, user_for_token
from app.services.unit_of_work import DbSession
from app.settings import Settings
from app.web.csrf import csrf_guard

T = TypeVar("T")


class NotAuthenticated(Exception):
    """No valid session or token: 401 for the API, a redirect to /login for pages."""


# The request path's worker threads: asyncio's executor costs less per call than anyio's
# (no capacity limiter, no cancel scope). Eight keep PostgreSQL's cores busy; more only
# contend for the GIL: under 32 labelers, 40 threads gave a judgment p99 of 113-158 ms
# and 8 gave 55-101 ms at the same rate (bench/labeling_load.py, 4 rounds each).
_HOT_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="prefloop-hot")


async def in_thread(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread (in the caller's context variables): what the
    async dependencies here and the async endpoints of the hot path do with a blocking
    call, one hop each (a sync endpoint costs two: the call, then FastAPI's check of its
    answer)."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HOT_THREADS, context.run, work, *args)


async def get_db(request: Request) -> AsyncIterator[DbSession]:
    """The request's session. Opening one does no I/O (it connects on first use) and
    closing one whose service committed or rolled back only returns its connection to
    the pool, so this runs on the event loop: a sync dependency would cost two
    worker-thread hops per request. A transaction still open at the end (a read-only
    request) is rolled back in a worker thread: that one is a round trip."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        if session.in_transaction():
            await in_thread(session.close)
        else:
            session.close()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[DbSession, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


UNKNOWN_TOKEN = "unknown or revoked token"


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization`` header, None when there is none; a header of
    another scheme, or with no token, is refused."""
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("use 'Authorization: Bearer <token>'")
    return token.strip()


async def current_user(request: Request, db: SessionDep) -> User:
    """The caller, from a bearer token or the session cookie (CSRF-checked) whose session
    is still recorded on the server (logout, a password change or deactivation end it).

    A token seen within the last second is answered from memory on the event loop (see
    ``tokens.cached_user_for_token``); the other lookups run in a worker thread. The CSRF
    check is called here rather than declared as a sub-dependency: each dependency costs
    FastAPI's resolution on every request."""
    await csrf_guard(request)
    token = bearer_token(request.headers.get("authorization", ""))
    if token is not None:
        user = cached_user_for_token(db, token) or await in_thread(user_for_token, db, token)
        if user is None:
            raise NotAuthenticated(UNKNOWN_TOKEN)
        return user
    uid, sid = request.session.get("uid"), request.session.get("sid")
    user = await in_thread(sessions.user_for_session, db, uid, sid)
    if user is None:
        raise NotAuthenticated("log in first")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    policy.require_admin(user)
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def optional_user(request: Request, db: SessionDep) -> User | None:
    """The logged-in user of a page that also works anonymously (the login page)."""
    return sessions.user_for_session(db, request.session.get("uid"), request.session.get("sid"))


OptionalUser = Annotated[User | None, Depends(optional_user)]

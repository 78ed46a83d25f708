"""Browser sessions end on the server (issue 11, defect 2): a cookie captured before logout,
a password change or a deactivation is refused at once, not after its 14 days."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db.models import UserSession
from app.services.accounts import users
from app.web.session_cookie import COOKIE_NAME, SessionCookieMiddleware, TrackedSession
from tests.helpers.pages import csrf_of, login


def _logged_in(client: TestClient, username: str) -> str:
    assert login(client, username).status_code == 303
    assert client.get("/api/v1/users/me").status_code == 200
    return client.cookies[COOKIE_NAME]


def _replay(app, cookie: str) -> int:
    """What a fresh client holding only the captured ``cookie`` gets (the logged-in client's
    own jar may hold the cookie the server sent since, which would hide a replay)."""
    with TestClient(app) as other:
        other.cookies.set(COOKIE_NAME, cookie)
        return other.get("/api/v1/users/me").status_code


def test_cookie_captured_before_logout_is_refused_after_it(app, client, make_user):
    make_user("labeler", "lena")
    captured = _logged_in(client, "lena")
    home = client.get("/")
    response = client.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert response.status_code == 200 and response.url.path == "/login"
    assert _replay(app, captured) == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_only_that_session(app, client, make_user, db):
    make_user("labeler", "lena")
    _logged_in(client, "lena")
    with TestClient(app) as other:
        _logged_in(other, "lena")
        assert db.scalar(select(func.count()).select_from(UserSession)) == 2
        other.post("/logout", data={"csrf_token": csrf_of(other.get("/").text)})
    assert client.get("/api/v1/users/me").status_code == 200
    assert db.scalar(select(func.count()).select_from(UserSession)) == 1


def test_password_change_ends_every_session(app, client, make_user, db):
    user = make_user("labeler", "lena")
    captured = _logged_in(client, "lena")
    users.set_password(db, user, "a-new-long-password")
    assert _replay(app, captured) == 401
    assert login(client, "lena").status_code == 401  # the old password is refused
    assert login(client, "lena", "a-new-long-password").status_code == 303


def test_deactivation_ends_sessions_and_tokens_at_once(app, client, make_user, token_for, db):
    user = make_user("labeler", "lena")
    headers = token_for(user)
    captured = _logged_in(client, "lena")
    users.deactivate(db, user)
    assert _replay(app, captured) == 401
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401
    assert login(client, "lena").status_code == 401


def test_a_signed_cookie_without_a_server_session_is_refused(app, client, make_user):
    """A cookie signed with the right key but naming no recorded session (as every cookie
    minted before sessions were recorded) logs nobody in."""
    user = make_user("admin", "ada")
    middleware = next(m for m in app.user_middleware if m.cls.__name__ == "SessionCookieMiddleware")
    forged = SessionCookieMiddleware(app, **middleware.kwargs)._cookie(
        TrackedSession(uid=user.id, sid="not-a-session"), secure=False
    )
    client.cookies.set(COOKIE_NAME, forged.split(";")[0].split("=", 1)[1])
    assert client.get("/api/v1/users/me").status_code == 401

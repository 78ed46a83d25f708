"""Authentication, roles, CSRF and login rate limiting (SPEC §1)."""

from __future__ import annotations

from sqlalchemy import select

from app.db.models import ApiToken, User
from tests.conftest import PASSWORD
from tests.helpers.pages import csrf_of, login


def test_api_without_token_is_401_with_json_error(client):
    response = client.get("/api/v1/projects")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_token_is_401(client):
    response = client.get("/api/v1/projects", headers={"Authorization": "Bearer pfl_nope"})
    assert response.status_code == 401


def test_labeler_token_on_admin_endpoint_is_403(client, make_user, token_for):
    headers = token_for(make_user("labeler"))
    response = client.post("/api/v1/projects", json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    response = client.post(
        "/api/v1/users", json={"username": "eve", "password": "p" * 10}, headers=headers
    )
    assert response.status_code == 403


def test_admin_creates_user_through_api(client, admin_headers, db):
    body = {"username": "maria", "password": "long-enough-pw", "role": "labeler"}
    response = client.post("/api/v1/users", json=body, headers=admin_headers)
    assert response.status_code == 201
    assert response.json()["username"] == "maria"
    again = client.post("/api/v1/users", json=body, headers=admin_headers)
    assert again.status_code == 409
    short = client.post(
        "/api/v1/users", json={**body, "username": "x2", "password": "short"}, headers=admin_headers
    )
    assert short.status_code == 422
    assert short.json()["error"]["details"][0]["field"] == "password"


def test_passwords_stored_as_argon2_and_tokens_hashed(db, make_user, token_for):
    user = make_user("admin")
    header = token_for(user)["Authorization"]
    stored = db.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    token = header.removeprefix("Bearer ")
    hashes = db.scalars(select(ApiToken.token_hash)).all()
    assert token not in hashes and len(hashes[0]) == 64


def test_revoked_token_is_refused(client, db, make_user, token_for):
    user = make_user("labeler")
    headers = token_for(user)
    created = client.post("/api/v1/tokens", json={"name": "second"}, headers=headers)
    second = {"Authorization": f"Bearer {created.json()['token']}"}
    assert client.get("/api/v1/users/me", headers=second).status_code == 200
    token_id = db.scalar(select(ApiToken.id).where(ApiToken.name == "second"))
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 204
    assert client.get("/api/v1/users/me", headers=second).status_code == 401
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200


def test_login_sets_httponly_lax_cookie_and_logout_clears(client, make_user):
    make_user("labeler", "lena")
    response = login(client, "lena")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    home = client.get("/")
    assert home.status_code == 200 and "lena" in home.text
    client.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert client.get("/", follow_redirects=False).status_code == 303


def test_secure_cookie_over_https(app, make_user):
    from fastapi.testclient import TestClient

    make_user("labeler", "sam")
    with TestClient(app, base_url="https://testserver") as secure_client:
        response = login(secure_client, "sam")
        assert "Secure" in response.headers["set-cookie"]


def test_form_post_without_csrf_is_403(client, make_user):
    make_user("labeler", "lena")
    client.get("/login")
    response = client.post("/login", data={"username": "lena", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.text
    login(client, "lena")
    assert client.post("/logout").status_code == 403


def test_api_post_with_session_cookie_needs_csrf_header(client, make_user):
    make_user("admin", "root")
    login(client, "root")
    body = {"name": "via-cookie"}
    assert client.post("/api/v1/projects", json=body).status_code == 403
    token = csrf_of(client.get("/").text)
    response = client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 201


def test_wrong_password_ten_times_is_rate_limited(client, make_user):
    make_user("labeler", "lena")
    for _ in range(10):
        assert login(client, "lena", "wrong-password").status_code == 401
    response = login(client, "lena")  # even the right password is refused now
    assert response.status_code == 429
    assert "Too many failed logins" in response.text


def test_pages_redirect_to_login(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"


def test_login_never_redirects_off_site(client, make_user):
    make_user("labeler", "lena")
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "username": "lena",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"

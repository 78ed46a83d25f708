"""Managing tokens and people without database access (issue 11, defect 6): the token list
and revoke API, deactivation by API, CLI and the admin page, each taking effect at once."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.models import User
from app.services.accounts import tokens, users
from tests.conftest import PASSWORD
from tests.helpers.pages import csrf_of, login

ME = "/api/v1/users/me"


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_token_creation_answers_its_id_and_the_list_shows_it(client, make_user, token_for):
    lena = make_user("labeler", "lena")
    headers = token_for(lena)
    other = token_for(make_user("labeler", "otto"))
    made = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=headers)
    assert made.status_code == 201
    body = made.json()
    assert body["name"] == "laptop" and body["username"] == "lena" and body["user_id"] == lena.id
    assert body["prefix"] == body["token"][:12] and body["revoked_at"] is None
    listed = client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["name"] for r in rows] == ["laptop", "cli"]  # newest first, own tokens only
    assert rows[0]["id"] == body["id"] and all("token" not in r for r in rows)
    assert {r["username"] for r in client.get("/api/v1/tokens", headers=other).json()} == {"otto"}


def test_only_an_admin_lists_or_revokes_someone_elses_tokens(client, make_user, token_for):
    lena, otto = make_user("labeler", "lena"), make_user("labeler", "otto")
    lena_headers, otto_headers = token_for(lena), token_for(otto)
    admin_headers = token_for(make_user("admin", "ada"))
    otto_token = client.get("/api/v1/tokens", headers=otto_headers).json()[0]["id"]
    spying = client.get(f"/api/v1/tokens?user_id={otto.id}", headers=lena_headers)
    assert spying.status_code == 403 and spying.json()["error"]["code"] == "forbidden"
    assert client.delete(f"/api/v1/tokens/{otto_token}", headers=lena_headers).status_code == 404
    assert client.get(ME, headers=otto_headers).status_code == 200
    seen = client.get(f"/api/v1/tokens?user_id={otto.id}", headers=admin_headers).json()
    assert [t["id"] for t in seen] == [otto_token]
    assert client.delete(f"/api/v1/tokens/{otto_token}", headers=admin_headers).status_code == 204
    assert client.get(ME, headers=otto_headers).status_code == 401
    again = client.get(f"/api/v1/tokens?user_id={otto.id}", headers=admin_headers).json()
    assert again[0]["revoked_at"] is not None
    assert client.delete(f"/api/v1/tokens/{otto_token}", headers=admin_headers).status_code == 404


def test_admin_deactivates_a_user_through_the_api(client, make_user, token_for, db):
    ada = make_user("admin", "ada")
    admin_headers = token_for(ada)
    lena = make_user("labeler", "lena")
    lena_headers = token_for(lena)
    listed = client.get("/api/v1/users", headers=admin_headers).json()
    assert {u["username"]: u["is_active"] for u in listed} == {"ada": True, "lena": True}
    url = f"/api/v1/users/{lena.id}/deactivate"
    assert client.post(url, headers=lena_headers).status_code == 403
    done = client.post(url, headers=admin_headers)
    assert done.status_code == 200 and done.json()["is_active"] is False
    assert client.get(ME, headers=lena_headers).status_code == 401
    assert login(client, "lena").status_code == 401
    own = client.post(f"/api/v1/users/{ada.id}/deactivate", headers=admin_headers)
    assert own.status_code == 409
    assert client.get(ME, headers=admin_headers).status_code == 200
    missing = client.post("/api/v1/users/999999999/deactivate", headers=admin_headers)
    assert missing.status_code == 404


def test_admin_page_deactivates_a_user(app, client, make_user, token_for, db):
    make_user("admin", "ada")
    lena = make_user("labeler", "lena")
    lena_headers = token_for(lena)
    assert login(client, "ada").status_code == 303
    page = client.get("/admin/users")
    assert page.status_code == 200 and 'aria-label="Deactivate lena"' in page.text
    assert 'aria-label="Deactivate ada"' not in page.text  # not oneself
    done = client.post(
        f"/admin/users/{lena.id}/deactivate",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/users"
    assert client.get(ME, headers=lena_headers).status_code == 401
    assert "deactivated" in client.get("/admin/users").text
    client.cookies.clear()
    assert login(client, "lena").status_code == 401


def test_labeler_cannot_reach_the_people_page(client, make_user):
    lena = make_user("labeler", "lena")
    assert login(client, "lena").status_code == 303
    assert client.get("/admin/users").status_code == 403
    page = client.get("/")
    denied = client.post(
        f"/admin/users/{lena.id}/deactivate", data={"csrf_token": csrf_of(page.text)}
    )
    assert denied.status_code == 403


@pytest.fixture
def cli_db(databases, tmp_path, monkeypatch) -> str:
    """A fresh database with two users and a token each, and the CLI's environment."""
    url = databases.new()
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            for name, role in (("ada", "admin"), ("lena", "labeler")):
                users.create_user(session, name, PASSWORD, role)
                tokens.create_token(session, name, f"{name}-laptop")
    finally:
        engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return url


def test_cli_token_list_and_revoke(cli_db):
    listed = CliRunner().invoke(cli, ["token", "list"])
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.output.splitlines()]
    assert rows[0] == ["id", "user", "name", "prefix", "created", "revoked", "last_used"]
    assert sorted(r[1] for r in rows[1:]) == ["ada", "lena"]
    lena_row = next(r for r in rows[1:] if r[1] == "lena")
    assert (
        lena_row[2] == "lena-laptop"
        and lena_row[3].startswith("pfl_")
        and lena_row[5:] == ["-", "-"]
    )
    only = CliRunner().invoke(cli, ["token", "list", "lena"])
    assert [line.split("\t")[1] for line in only.output.splitlines()[1:]] == ["lena"]
    revoked = CliRunner().invoke(cli, ["token", "revoke", lena_row[0]])
    assert revoked.exit_code == 0 and f"revoked token {lena_row[0]}" in revoked.output
    after = CliRunner().invoke(cli, ["token", "list", "lena"]).output.splitlines()[1]
    assert after.split("\t")[5] != "-"
    twice = CliRunner().invoke(cli, ["token", "revoke", lena_row[0]])
    assert twice.exit_code == 1 and "no active token" in twice.output


def test_cli_token_list_shows_when_a_token_was_last_used(cli_db):
    engine = create_engine(cli_db)
    try:
        with Session(engine) as session:
            secret = tokens.create_token(session, "lena", "used")
            assert tokens.user_for_token(session, secret).username == "lena"
    finally:
        engine.dispose()
    listed = CliRunner().invoke(cli, ["token", "list", "lena"])
    rows = {r[2]: r for r in (line.split("\t") for line in listed.output.splitlines()[1:])}
    assert rows["lena-laptop"][6] == "-" and rows["used"][6] != "-"


def test_cli_user_deactivate(cli_db):
    done = CliRunner().invoke(cli, ["user", "deactivate", "lena"])
    assert done.exit_code == 0 and "deactivated 'lena'" in done.output
    engine = create_engine(cli_db)
    try:
        with Session(engine) as session:
            active = dict(session.execute(select(User.username, User.is_active)).all())
    finally:
        engine.dispose()
    assert active == {"ada": True, "lena": False}
    missing = CliRunner().invoke(cli, ["user", "deactivate", "nobody"])
    assert missing.exit_code == 1 and "no user named 'nobody'" in missing.output

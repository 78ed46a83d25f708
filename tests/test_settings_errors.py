"""Settings refuse unsafe values; errors have one JSON shape and never leak a 500."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_default_secret_refused_outside_development():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment="production")
    Settings(environment="production", secret_key="x" * 32)
    Settings(environment="development")


def test_unknown_api_route_is_json_404(client, admin_headers):
    response = client.get("/api/v1/nothing-here", headers=admin_headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_missing_project_is_404_and_foreign_project_looks_missing(
    client, admin_headers, make_user, token_for
):
    created = client.post("/api/v1/projects", json={"name": "secret"}, headers=admin_headers)
    project_id = created.json()["id"]
    labeler = token_for(make_user("labeler"))
    assert client.get(f"/api/v1/projects/{project_id}", headers=labeler).status_code == 404
    assert client.get("/api/v1/projects/999999", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/projects", headers=labeler).json() == []


def test_bad_json_body_is_422_not_500(client, admin_headers):
    response = client.post(
        "/api/v1/projects",
        content=b"{not json",
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_bad_settings_name_the_field(client, admin_headers):
    body = {"name": "p", "settings": {"labels_per_prompt": 0, "bogus": 1}}
    response = client.post("/api/v1/projects", json=body, headers=admin_headers)
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"settings.labels_per_prompt", "settings.bogus"}


def test_member_added_sees_project(client, admin_headers, make_user, token_for):
    project = client.post("/api/v1/projects", json={"name": "shared"}, headers=admin_headers)
    user = make_user("labeler", "lina")
    url = f"/api/v1/projects/{project.json()['id']}/members"
    assert client.post(url, json={"username": "lina"}, headers=admin_headers).status_code == 204
    assert client.post(url, json={"username": "nobody"}, headers=admin_headers).status_code == 404
    visible = client.get("/api/v1/projects", headers=token_for(user)).json()
    assert [p["name"] for p in visible] == ["shared"]


def test_status_transitions_follow_the_lifecycle(client, admin_headers):
    project = client.post("/api/v1/projects", json={"name": "life"}, headers=admin_headers).json()
    url = f"/api/v1/projects/{project['id']}"
    assert client.patch(url, json={"status": "paused"}, headers=admin_headers).status_code == 200
    assert client.patch(url, json={"status": "draft"}, headers=admin_headers).status_code == 409
    assert client.patch(url, json={"status": "nope"}, headers=admin_headers).status_code == 422


def test_html_error_page_for_browsers(client, make_user):
    from tests.helpers.pages import login

    make_user("labeler", "lena")
    login(client, "lena")
    response = client.get("/admin/projects/123456", headers={"accept": "text/html"})
    assert response.status_code in (403, 404)
    assert "<html" in response.text


def test_htmx_error_is_a_toast(client, make_user):
    from tests.helpers.pages import login

    make_user("labeler", "lena")
    login(client, "lena")
    response = client.get("/api/v1/projects/999999999", headers={"HX-Request": "true"})
    assert response.status_code == 404  # /api stays JSON even for htmx
    page = client.get("/definitely-missing", headers={"HX-Request": "true"})
    assert page.status_code == 404
    assert "prefloop:toast" in page.headers["hx-trigger"]
    assert page.headers["hx-reswap"] == "none"


def test_a_refused_patch_changes_nothing(client, admin_headers):
    """Settings and status are one transaction: a refused status keeps the old settings."""
    project = client.post("/api/v1/projects", json={"name": "atomic"}, headers=admin_headers)
    url = f"/api/v1/projects/{project.json()['id']}"
    body = {"settings": {"labels_per_prompt": 5}, "status": "draft"}
    assert client.patch(url, json=body, headers=admin_headers).status_code == 409
    after = client.get(url, headers=admin_headers).json()
    assert after["settings"]["labels_per_prompt"] == 3 and after["status"] == "active"


def test_render_setting_is_markdown_or_plain(client, admin_headers):
    body = {"name": "shown", "settings": {"render": "plain"}}
    created = client.post("/api/v1/projects", json=body, headers=admin_headers)
    assert created.status_code == 201 and created.json()["settings"]["render"] == "plain"
    default = client.post("/api/v1/projects", json={"name": "d"}, headers=admin_headers)
    assert default.json()["settings"]["render"] == "markdown"
    url = f"/api/v1/projects/{created.json()['id']}"
    bad = client.patch(url, json={"settings": {"render": "html"}}, headers=admin_headers)
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["error"]["details"]] == ["settings.render"]
    assert client.get(url, headers=admin_headers).json()["settings"]["render"] == "plain"

"""Admin project pages (`/admin/projects/new`, `/admin/projects/{id}`): create, edit
every setting, status, members, import with errors shown in place, progress."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.db.models import Project
from app.services import projects
from tests.factories import make_project
from tests.helpers.imports import counts, jsonl, row
from tests.helpers.pages import csrf_of, login

HTMX = {"HX-Request": "true"}

SETTINGS_FORM = {
    "name": "Edited",
    "description": "About it",
    "labels_per_prompt": "4",
    "lease_minutes": "45",
    "gold_rate": "0.1",
    "rating_axes": "helpful, concise",
    "guidelines": "# Rank\n\n**Bold** rules",
    "allow_ties": "on",
    "show_flags": "on",
    "render": "plain",
    "adaptive": "on",
    "adaptive_max_labels": "6",
    "adaptive_min_agreement": "0.8",
}


@pytest.fixture
def admin(client, make_user):
    make_user("admin", "root")
    assert login(client, "root").status_code == 303
    return csrf_of(client.get("/admin/projects/new").text)


@pytest.fixture
def project(db):
    return make_project(db, k=3, status="draft", name="Pages")


def error_of(html: str, field: str) -> str:
    match = re.search(rf'id="err-{field}">([^<]*)<', html)
    assert match, f"no error shown for {field}"
    return match.group(1)


def test_labeler_gets_403_everywhere(client, make_user, project):
    make_user("labeler", "lab")
    login(client, "lab")
    for url in (
        "/admin/projects/new",
        f"/admin/projects/{project.id}",
        f"/admin/projects/{project.id}/progress",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "admin" in response.text
    response = client.post(
        f"/admin/projects/{project.id}/status",
        data={"status": "active"},
        headers={"X-CSRF-Token": "x"},
    )
    assert response.status_code == 403


def test_anonymous_is_sent_to_login(client, project):
    response = client.get(f"/admin/projects/{project.id}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_create_project_from_the_form(client, db, admin):
    form = {**SETTINGS_FORM, "name": "Fresh", "status": "draft", "csrf_token": admin}
    response = client.post("/admin/projects", data=form, follow_redirects=False)
    assert response.status_code == 303
    project = db.scalar(select(Project).where(Project.name == "Fresh"))
    assert response.headers["location"] == f"/admin/projects/{project.id}"
    assert project.status == "draft" and project.settings["labels_per_prompt"] == 4
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "Fresh" in page.text


def test_create_shows_every_error_next_to_its_field(client, db, admin):
    form = {
        **SETTINGS_FORM,
        "name": " ",
        "labels_per_prompt": "0",
        "gold_rate": "lots",
        "csrf_token": admin,
    }
    response = client.post("/admin/projects", data=form)
    assert response.status_code == 422
    assert "1 to 200" in error_of(response.text, "name")
    assert "greater than or equal to 1" in error_of(response.text, "labels_per_prompt")
    assert error_of(response.text, "gold_rate")
    assert 'value="lots"' in response.text  # the form keeps what was typed
    duplicate = client.post(
        "/admin/projects",
        data={**SETTINGS_FORM, "name": "Twice", "csrf_token": admin},
        follow_redirects=False,
    )
    assert duplicate.status_code == 303
    again = client.post(
        "/admin/projects", data={**SETTINGS_FORM, "name": "Twice", "csrf_token": admin}
    )
    assert again.status_code == 422 and "already exists" in error_of(again.text, "name")


def test_edit_every_setting(client, db, admin, project):
    url = f"/admin/projects/{project.id}/settings"
    response = client.post(url, data={**SETTINGS_FORM, "csrf_token": admin}, follow_redirects=False)
    assert response.status_code == 303
    db.refresh(project)
    assert project.name == "Edited" and project.description == "About it"
    assert project.settings == {
        "labels_per_prompt": 4,
        "allow_ties": True,
        "allow_reject_all": False,
        "rating_axes": ["helpful", "concise"],
        "require_rationale": False,
        "lease_minutes": 45,
        "guidelines": "# Rank\n\n**Bold** rules",
        "gold_rate": 0.1,
        "show_flags": True,
        "adaptive": {"max_labels": 6, "min_agreement": 0.8},
        "render": "plain",
    }
    page = client.get(f"/admin/projects/{project.id}").text
    assert "<strong>Bold</strong>" in page and 'value="helpful, concise"' in page


def test_invalid_settings_are_refused_with_the_field_named(client, db, admin, project):
    url = f"/admin/projects/{project.id}/settings"
    form = {**SETTINGS_FORM, "lease_minutes": "-1", "csrf_token": admin}
    response = client.post(url, data=form)
    assert response.status_code == 422 and "<html" in response.text
    assert error_of(response.text, "lease_minutes")
    below_k = client.post(
        url, data={**SETTINGS_FORM, "adaptive_max_labels": "2", "csrf_token": admin}
    )
    assert below_k.status_code == 422
    assert "max_labels must be at least labels_per_prompt" in below_k.text
    fragment = client.post(url, data=form, headers=HTMX)
    assert fragment.status_code == 422 and "<html" not in fragment.text
    assert 'id="settings-form"' in fragment.text and error_of(fragment.text, "lease_minutes")
    db.refresh(project)
    assert project.name == "Pages" and project.settings["lease_minutes"] == 30


def test_saving_with_htmx_returns_the_form_and_a_toast(client, admin, project):
    url = f"/admin/projects/{project.id}/settings"
    response = client.post(url, data={**SETTINGS_FORM, "csrf_token": admin}, headers=HTMX)
    assert response.status_code == 200 and "Settings saved." in response.text
    assert "prefloop:toast" in response.headers["HX-Trigger"]


def test_status_follows_the_allowed_transitions(client, db, admin, project):
    url = f"/admin/projects/{project.id}/status"
    page = client.get(f"/admin/projects/{project.id}").text
    assert 'name="status" value="active"' in page and 'value="paused"' not in page
    ok = client.post(url, data={"status": "active", "csrf_token": admin}, follow_redirects=False)
    assert ok.status_code == 303
    db.refresh(project)
    assert project.status == "active"
    refused = client.post(url, data={"status": "draft", "csrf_token": admin})
    assert refused.status_code == 409 and "cannot become draft" in refused.text
    client.post(url, data={"status": "archived", "csrf_token": admin})
    db.refresh(project)
    assert project.status == "archived"
    assert "Unarchive" in client.get(f"/admin/projects/{project.id}").text


def test_members_add_list_and_remove(client, db, admin, project, make_user):
    make_user("labeler", "alice")
    url = f"/admin/projects/{project.id}/members"
    added = client.post(url, data={"username": "alice", "csrf_token": admin}, headers=HTMX)
    assert added.status_code == 200 and "alice" in added.text and "<html" not in added.text
    assert [u.username for u in projects.members(db, project)] == ["alice"]
    unknown = client.post(url, data={"username": "ghost", "csrf_token": admin})
    assert unknown.status_code == 422 and "no user named" in unknown.text
    removed = client.post(
        f"{url}/remove", data={"username": "alice", "csrf_token": admin}, follow_redirects=False
    )
    assert removed.status_code == 303 and projects.members(db, project) == []


def test_upload_with_an_error_shows_its_line_in_place(client, db, admin, project):
    url = f"/admin/projects/{project.id}/import"
    bad = jsonl(row("p1"), row("p2", n=1))
    before = counts(db)
    files = {"file": ("prompts.jsonl", bad, "application/x-ndjson")}
    htmx = {**HTMX, "X-CSRF-Token": admin}  # as base.html's hx-headers sends it
    fragment = client.post(url, files=files, data={"format": "jsonl"}, headers=htmx)
    assert fragment.status_code == 422 and "<html" not in fragment.text
    assert re.search(r"<td>2</td><td><code>completions</code></td>", fragment.text)
    page = client.post(url, files=files, data={"format": "jsonl", "csrf_token": admin})
    assert page.status_code == 422 and "<html" in page.text and "Nothing was imported" in page.text
    assert counts(db) == before
    good = {"file": ("p.csv", b"prompt,completion_1,completion_2\nq,a,b\n", "text/csv")}
    done = client.post(url, files=good, data={"format": "csv"}, headers=htmx)
    assert done.status_code == 200 and "Imported 1 prompt," in done.text
    assert "prefloop:imported" in done.headers["HX-Trigger"]


def test_progress_fragment_and_guidelines_preview(client, db, admin, project):
    htmx = {**HTMX, "X-CSRF-Token": admin}
    imported = client.post(
        f"/admin/projects/{project.id}/import",
        headers=htmx,
        files={"file": ("p.jsonl", jsonl(row("a"), row("b")), "application/x-ndjson")},
    )
    assert imported.status_code == 200
    fragment = client.get(f"/admin/projects/{project.id}/progress", headers=HTMX)
    assert fragment.status_code == 200 and 'id="progress"' in fragment.text
    assert re.search(r"<b>2</b><span class=\"muted\">pending", fragment.text)
    assert 'hx-trigger="every 10s' in fragment.text
    preview = client.post(
        "/admin/projects/preview",
        headers=htmx,
        data={"guidelines": "*Rank* <script>alert(1)</script>"},
    )
    assert "<em>Rank</em>" in preview.text and "<script>" not in preview.text


def test_page_links_to_labeling_and_agreement(client, db, admin, project):
    projects.set_status(db, project, "active")
    page = client.get(f"/admin/projects/{project.id}").text
    assert f'href="/projects/{project.id}/label"' in page
    assert f'href="/admin/projects/{project.id}/agreement"' in page


def test_render_is_a_choice_and_the_saved_one_is_selected(client, db, admin, project):
    url = f"/admin/projects/{project.id}/settings"
    bad = client.post(url, data={**SETTINGS_FORM, "render": "html", "csrf_token": admin})
    assert bad.status_code == 422 and "markdown" in error_of(bad.text, "render")
    assert 'name="render" aria-invalid="true"' in bad.text
    assert '<option value="markdown" selected>' in client.get(f"/admin/projects/{project.id}").text
    client.post(url, data={**SETTINGS_FORM, "csrf_token": admin}, follow_redirects=False)
    page = client.get(f"/admin/projects/{project.id}").text
    assert '<option value="plain" selected>' in page

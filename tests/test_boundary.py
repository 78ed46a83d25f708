"""Nothing a client sends yields a 500 (SPEC §7, issue 11 defects 1 and 5): ids beyond the
database's bigint, NUL characters in strings, deeply nested import metadata, and unsafe
requests without credentials. The id and anonymous tests walk the app's own routes, so a
new operation is covered the day it is added."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.routing import APIRoute

from app.main import create_app
from tests.factories import make_project, make_prompts
from tests.helpers.pages import csrf_of, login
from tests.test_error_shape import assert_shape

HUGE = 2**63
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _routes(prefix: str) -> list[tuple[str, str]]:
    from app.settings import Settings

    app = create_app(Settings(database_url="postgresql://unused/none"))
    found = []
    for route in app.routes:  # FastAPI >= 0.16x keeps included routers as one route each
        for path, api_route in _flatten(route):
            if path.startswith(prefix):
                found += [(method, path) for method in sorted(api_route.methods)]
    return found


def _flatten(route) -> list[tuple[str, APIRoute]]:
    if isinstance(route, APIRoute):
        return [(route.path, route)]
    contexts = getattr(route, "effective_route_contexts", lambda: [])()
    return [(c.path, c.original_route) for c in contexts if isinstance(c.original_route, APIRoute)]


def _fill(path: str, value: object) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: "a" if m.group(1) == "path" else str(value), path)


ID_ROUTES = [r for r in _routes("/") if re.search(r"\{\w+_id\}", r[1])]


@pytest.mark.parametrize(("method", "path"), ID_ROUTES, ids=[f"{m} {p}" for m, p in ID_ROUTES])
def test_huge_ids_in_paths_are_a_404_or_422(client, admin_headers, method, path):
    response = client.request(method, _fill(path, HUGE), headers=admin_headers, json={})
    assert response.status_code < 500, response.text
    assert response.status_code in (400, 404, 405, 409, 415, 422), response.text


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/training-runs/1?after_step=1099511627776", "after_step"),
        ("/admin/projects/{pid}/agreement?page=9223372036854775808", "page"),
    ],
)
def test_huge_integers_in_queries_are_refused(client, admin_headers, project, url, field):
    url = url.replace("{pid}", str(project.id))
    response = client.get(url, headers={**admin_headers, "Accept": "application/json"})
    assert response.status_code in (404, 422), response.text
    if response.status_code == 422:
        assert field in [d["field"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize("field", ["export_id", "parent_run_id", "project_id"])
def test_huge_ids_in_run_bodies_are_refused(client, admin_headers, field):
    body = {"kind": "reward", "export_id": 1, field: HUGE}
    assert_shape(client.post("/api/v1/training-runs", json=body, headers=admin_headers), field)


@pytest.mark.parametrize("export_id", [str(HUGE), "9" * 5000, "\u00b2"])
def test_bad_export_ids_in_the_run_form_are_refused(client, admin_headers, export_id):
    form = {"kind": "reward", "export_id": export_id, "base_model": "m"}
    response = client.post("/admin/runs", data=form, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert "must be a whole number from 1 to" in response.text


@pytest.mark.parametrize(
    "fields",
    [
        {"duration_ms": "9" * 5000},
        {"duration_ms": "\u00b2"},
        {"rating-0-0": "\u00b2", "axis-0": "helpful"},
        {"ranking": "[" * 100_000},
    ],
)
def test_odd_numbers_in_the_label_form_are_no_500(client, db, make_user, fields):
    labeler = make_user()
    project = make_project(db, members=[labeler])
    make_prompts(db, project, 1, completions=2)
    login(client, labeler.username)
    page = client.get(f"/projects/{project.id}/label").text
    assignment = re.search(r'hx-post="/projects/\d+/label/(\d+)"', page).group(1)
    cids = re.findall(r'name="cid-(\d+)" value="([^"]+)"', page)
    form = {"csrf_token": csrf_of(page), "ranking": json.dumps([[c] for _, c in cids])}
    form |= {f"cid-{n}": cid for n, cid in cids} | fields
    url = f"/projects/{project.id}/label/{assignment}"
    response = client.post(url, data=form, follow_redirects=False)
    assert response.status_code < 500, response.text


def test_a_json_body_nested_beyond_the_parser_is_no_500(client, admin_headers):
    body = "[" * 100_000 + "]" * 100_000
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/projects", content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text


@pytest.fixture
def project(db):
    return make_project(db)


NUL = "a\u0000b"


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", "/api/v1/projects", {"name": NUL}, "name"),
        ("post", "/api/v1/projects", {"name": "p", "description": NUL}, "description"),
        ("patch", "/api/v1/projects/{pid}", {"guidelines": NUL}, "guidelines"),
        (
            "patch",
            "/api/v1/projects/{pid}",
            {"settings": {"rating_axes": ["ok", NUL]}},
            "settings.rating_axes.1",
        ),
        ("post", "/api/v1/projects/{pid}/members", {"username": NUL}, "username"),
        ("post", "/api/v1/tokens", {"name": NUL}, "name"),
        ("post", "/api/v1/training-runs", {"kind": "reward", "base_model": NUL}, "base_model"),
        ("post", "/api/v1/projects/{pid}/exports", {"filters": {"models": [NUL]}}, "filters"),
        ("get", "/api/v1/training-runs?kind=a%00b", None, "kind"),
        ("get", "/api/v1/training-runs?status=a%00b", None, "status"),
        ("get", "/api/v1/training-runs/1/files/a%00b", None, "path"),
    ],
)
def test_nul_characters_are_a_422_naming_the_field(
    client, admin_headers, project, method, url, body, field
):
    url = url.replace("{pid}", str(project.id))
    response = client.request(method, url, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


def test_nul_in_a_judgment_rationale_and_flags_is_a_422(client, db, make_user, token_for):
    labeler = make_user()
    project = make_project(db, members=[labeler])
    make_prompts(db, project, 1, completions=2)
    headers = token_for(labeler)
    task = client.get(f"/api/v1/projects/{project.id}/tasks/next", headers=headers).json()
    for body, field in (
        ({"ranking": [[0], [1]], "rationale": NUL}, "rationale"),
        ({"ranking": [[0], [1]], "flags": [NUL]}, "flags"),
    ):
        url = f"/api/v1/assignments/{task['assignment_id']}/judgment"
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert any(d["field"].startswith(field) for d in response.json()["error"]["details"])


def test_nul_in_a_form_post_is_a_422_naming_the_field(client, make_user):
    login(client, make_user("admin", "formadmin").username)
    data = {"name": NUL, "csrf_token": csrf_of(client.get("/admin/projects/new").text)}
    response = client.post("/admin/projects", data=data, headers={"Accept": "application/json"})
    assert response.status_code == 422, response.text
    assert "name" in [d["field"] for d in response.json()["error"]["details"]]


def test_deeply_nested_import_metadata_is_a_422_naming_line_and_field(
    client, admin_headers, project
):
    deep: object = "x"
    for _ in range(900):
        deep = {"k": deep}
    line = {
        "id": "p1",
        "prompt": "hi",
        "completions": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
        "metadata": deep,
    }
    files = {"file": ("data.jsonl", (json.dumps(line) + "\n").encode(), "application/x-ndjson")}
    url = f"/api/v1/projects/{project.id}/import"
    response = client.post(url, files=files, headers=admin_headers)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert {"line": 1, "field": "metadata"}.items() <= details[0].items(), details


UNSAFE_API = [r for r in _routes("/api/") if r[0] in UNSAFE]


@pytest.mark.parametrize(("method", "path"), UNSAFE_API, ids=[f"{m} {p}" for m, p in UNSAFE_API])
def test_anonymous_unsafe_api_requests_are_401(client, method, path):
    # the body is not read before authentication, so even a NUL in it is a 401
    response = client.request(method, _fill(path, 1), json={"name": NUL})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "not_authenticated"


UNSAFE_PAGES = [
    r for r in _routes("/") if r[0] in UNSAFE and not r[1].startswith(("/api/", "/login"))
]


@pytest.mark.parametrize(
    ("method", "path"), UNSAFE_PAGES, ids=[f"{m} {p}" for m, p in UNSAFE_PAGES]
)
def test_anonymous_form_posts_redirect_to_login(client, method, path):
    response = client.request(method, _fill(path, 1), data={"x": "1"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/login")

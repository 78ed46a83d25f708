"""Request bodies are bounded before they are read (issue 11, defect 3): MAX_BODY_BYTES
caps JSON and form bodies, anonymous API writes are refused unread, imports keep their own
streamed limit."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import anyio
import pytest

from tests.factories import make_project
from tests.helpers.imports import post, row

LIMIT = 4096


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"max_body_bytes": LIMIT})


def _asgi_post(app, path: str, headers: dict[str, str], length: int) -> tuple[int, dict, int]:
    """POST ``path`` announcing ``length`` body bytes, straight through ASGI; returns the
    status, the JSON answer and how many times the app asked for the body."""
    start, body, asked = _asgi_exchange(app, path, headers, length)
    return start["status"], json.loads(body), asked


def _asgi_exchange(app, path: str, headers: dict[str, str], length: int) -> tuple[dict, bytes, int]:
    """The same POST; returns the response's start message, its body and the count."""
    asked = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal asked
        asked += 1
        chunk = 65536
        more = asked * chunk < length
        return {"type": "http.request", "body": b"x" * chunk, "more_body": more}

    async def send(message: dict) -> None:
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*raw, (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "app": app,
    }
    with ThreadPoolExecutor(1) as thread:  # its own event loop, whatever runs in this one
        thread.submit(anyio.run, app, scope, receive, send).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start, body, asked


def test_anonymous_oversized_api_post_is_401_without_reading_the_body(app):
    json_type = {"Content-Type": "application/json"}
    status, answer, asked = _asgi_post(app, "/api/v1/projects", json_type, 16 * 2**20)
    assert (status, answer["error"]["code"], asked) == (401, "not_authenticated", 0)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BAD_COOKIE = {**FORM, "Cookie": "prefloop_session=forged.signature"}


@pytest.mark.parametrize("headers", [FORM, BAD_COOKIE], ids=["no cookie", "forged cookie"])
@pytest.mark.parametrize(
    "path", ["/admin/projects", "/admin/projects/1/import", "/projects/1/label/2", "/admin/runs"]
)
def test_anonymous_page_post_goes_to_login_without_reading_the_body(app, path, headers):
    start, _, asked = _asgi_exchange(app, path, headers, 16 * 2**20)
    location = dict(start["headers"]).get(b"location", b"").decode()
    assert (start["status"], location, asked) == (303, f"/login?next={quote(path)}", 0)


def test_the_login_form_is_still_read_without_a_session(client):
    response = client.post("/login", data={"username": "nobody", "password": "p"})
    assert response.status_code == 403  # read, then refused: no CSRF token in the form


def test_credentialed_oversized_post_is_413_without_reading_the_body(app):
    headers = {"Content-Type": "application/json", "Authorization": "Bearer pfl_whoever"}
    status, answer, asked = _asgi_post(app, "/api/v1/projects", headers, 16 * 2**20)
    assert (status, answer["error"]["code"], asked) == (413, "too_large", 0)
    assert str(LIMIT) in answer["error"]["message"]


def test_json_bodies_over_the_limit_are_413_and_under_it_work(client, admin_headers):
    big = {"name": "big", "description": "x" * LIMIT}
    response = client.post("/api/v1/projects", json=big, headers=admin_headers)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    small = client.post("/api/v1/projects", json={"name": "small"}, headers=admin_headers)
    assert small.status_code == 201


def test_a_chunked_body_is_stopped_once_it_passes_the_limit(client, admin_headers):
    sent = 0

    def chunks():
        nonlocal sent
        yield b'{"name": "chunked", "description": "'
        for _ in range(64):
            sent += 1
            yield b"y" * 1024
        yield b'"}'

    headers = {**admin_headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/projects", content=chunks(), headers=headers)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_form_posts_are_capped_too(client):
    response = client.post("/login", data={"username": "u" * LIMIT, "password": "p"})
    assert response.status_code == 413


def test_imports_keep_their_own_larger_limit(client, db, admin_headers):
    project = make_project(db)
    records = [row(f"p{i}") for i in range(200)]
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    assert len(body) > 4 * LIMIT
    response = post(client, admin_headers, project.id, body)
    assert response.status_code == 200 and response.json()["imported"] == 200

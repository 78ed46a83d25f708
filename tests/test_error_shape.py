"""Every validating endpoint reports problems the same way (SPEC §7, issue 10 §4):
``{"error": {"code", "message", "details": [{"line", "field", "message"}]}}``, the message
being the one summary of the first problem."""

from __future__ import annotations

import pytest

from app.domain.errors import summary
from tests.factories import make_project, make_prompts


def assert_shape(response, field: str) -> list[dict]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "validation_failed"
    details = error["details"]
    assert details and all(list(d) == ["line", "field", "message"] for d in details)
    assert all(isinstance(d["field"], str) and isinstance(d["message"], str) for d in details)
    assert field in [d["field"] for d in details]
    assert error["message"].endswith(summary(details).removeprefix(_where(details[0])))
    return details


def _where(first: dict) -> str:
    return f"line {first['line']}: " if first["line"] else ""


@pytest.fixture
def project(db):
    return make_project(db)


BAD_REQUESTS = [
    ("post", "/api/v1/users", {"username": "", "password": "x", "role": "labeler"}, "password"),
    (
        "post",
        "/api/v1/projects",
        {"name": "p", "settings": {"labels_per_prompt": 0}},
        "settings.labels_per_prompt",
    ),
    ("post", "/api/v1/projects", {"name": ""}, "name"),
    (
        "patch",
        "/api/v1/projects/{pid}",
        {"settings": {"rating_axes": ["a", "a"]}},
        "settings.rating_axes",
    ),
    ("patch", "/api/v1/projects/{pid}", {"status": "sleeping"}, "status"),
    (
        "post",
        "/api/v1/projects/{pid}/exports",
        {"strategy": "all", "filters": {"x": 1}},
        "filters.x",
    ),
    ("post", "/api/v1/projects/{pid}/exports", {"strategy": "nope"}, "strategy"),
    ("post", "/api/v1/tokens", {"name": 5}, "name"),
    ("post", "/api/v1/training-runs", {"kind": "reward"}, "export_id"),
    ("get", "/api/v1/projects/first", None, "project_id"),
    ("post", "/api/v1/projects/{pid}/import?format=xml", None, "format"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_REQUESTS)
def test_each_validating_endpoint_answers_one_shape(
    client, admin_headers, project, method, path, body, field
):
    url = path.format(pid=project.id)
    kwargs = {"headers": admin_headers} | ({"json": body} if body is not None else {})
    response = getattr(client, method)(url, **kwargs)
    assert_shape(response, field)


def test_import_problems_carry_their_line(client, admin_headers, project):
    body = b'{"id": "a", "prompt": "p", "completions": []}\n{"nope"\n'
    response = client.post(
        f"/api/v1/projects/{project.id}/import",
        content=body,
        headers={**admin_headers, "Content-Type": "application/x-ndjson"},
    )
    details = assert_shape(response, "completions")
    assert [d["line"] for d in details] == [1, 2]
    message = response.json()["error"]["message"]
    assert message == "import refused, nothing was written: " + summary(details)
    assert message.endswith("(and 1 more problem(s))")


def test_a_judgment_lists_every_problem(client, db, make_user, token_for):
    user = make_user("labeler")
    headers = token_for(user)
    project = make_project(db, members=[user], allow_ties=False)
    make_prompts(db, project, 1)
    task = client.get(f"/api/v1/projects/{project.id}/tasks/next", headers=headers).json()
    body = {"ranking": [["c1", "c2", "c3"]], "ratings": {"c9": {"helpful": 1}}}
    response = client.post(
        f"/api/v1/assignments/{task['assignment_id']}/judgment", json=body, headers=headers
    )
    details = assert_shape(response, "ratings.c9")
    assert response.json()["error"]["message"] == summary(details)
    assert summary(details).endswith(f"(and {len(details) - 1} more problem(s))")

"""Every answer of a full API session matches the OpenAPI document the app serves
(issue 10 §5): its status code is documented for that operation, and a JSON body
validates against the documented schema, errors included (SPEC §7)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

JSONL = "".join(
    json.dumps(
        {
            "id": f"q{n}",
            "prompt": f"Question {n}?",
            "completions": [{"id": "a", "text": "yes"}, {"id": "b", "text": "no"}],
        }
    )
    + "\n"
    for n in range(2)
)


class Checked:
    """A test client whose every answer is checked against the served document."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.document = client.get("/api/v1/openapi.json").json()
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
            for path in self.document["paths"]
        ]
        self.seen: set[tuple[str, str, int]] = set()

    def operation(self, method: str, url: str) -> tuple[str, dict[str, Any]]:
        path = url.split("?")[0]
        matches = [t for rx, t in self.routes if rx.match(path)]
        assert matches, f"{path} is not documented"
        template = min(matches, key=lambda t: t.count("{"))  # /users/me before /users/{id}
        operations = self.document["paths"][template]
        assert method in operations, f"{method.upper()} {template} is not documented"
        return template, operations[method]

    def __call__(self, method: str, url: str, **kwargs: Any) -> Any:
        response = getattr(self.client, method)(url, **kwargs)
        template, operation = self.operation(method, url)
        code = str(response.status_code)
        documented = operation["responses"]
        spec = documented.get(code) or documented.get(code[0] + "XX")
        assert spec, f"{method.upper()} {template} answered {code}: not documented"
        self.seen.add((method, template, response.status_code))
        if response.content and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            schema = spec.get("content", {}).get("application/json", {}).get("schema")
            assert schema is not None, f"{method.upper()} {template} {code}: no JSON schema"
            full = {**schema, "components": self.document["components"]}
            errors = sorted(
                Draft202012Validator(full).iter_errors(response.json()), key=lambda e: e.path
            )
            assert not errors, f"{method.upper()} {template} {code}: " + "; ".join(
                f"{list(e.path)}: {e.message}" for e in errors[:3]
            )
        return response


@pytest.fixture
def api(client) -> Checked:
    return Checked(client)


def test_a_full_api_session_answers_as_documented(api, admin_headers, make_user, token_for):
    admin = admin_headers
    assert api("get", "/api/v1/users/me", headers=admin).status_code == 200
    created = api(
        "post",
        "/api/v1/users",
        json={"username": "lab1", "password": "long enough", "role": "labeler"},
        headers=admin,
    )
    assert created.status_code == 201
    token = api("post", "/api/v1/tokens", json={"name": "t"}, headers=admin)
    assert token.status_code == 201
    labeler = token_for(make_user("labeler", "lab2"))

    project = api(
        "post",
        "/api/v1/projects",
        json={"name": "documented", "settings": {"labels_per_prompt": 1}},
        headers=admin,
    ).json()
    pid = project["id"]
    assert api("get", "/api/v1/projects", headers=admin).status_code == 200
    assert api("get", f"/api/v1/projects/{pid}", headers=admin).status_code == 200
    patch = {"description": "d", "settings": {"allow_ties": False}}
    assert api("patch", f"/api/v1/projects/{pid}", json=patch, headers=admin).status_code == 200
    for name in ("lab1", "lab2"):
        member = api(
            "post", f"/api/v1/projects/{pid}/members", json={"username": name}, headers=admin
        )
        assert member.status_code == 204
    assert api("delete", f"/api/v1/projects/{pid}/members/lab1", headers=admin).status_code == 204

    ndjson = {**admin, "Content-Type": "application/x-ndjson"}
    imported = api("post", f"/api/v1/projects/{pid}/import", content=JSONL, headers=ndjson)
    assert imported.json() == {"imported": 2, "skipped": 0}

    task = api("get", f"/api/v1/projects/{pid}/tasks/next", headers=labeler).json()
    judged = api(
        "post",
        f"/api/v1/assignments/{task['assignment_id']}/judgment",
        json={"ranking": [[task["completions"][0]["id"]], [task["completions"][1]["id"]]]},
        headers=labeler,
    )
    assert judged.status_code == 201
    task = api("get", f"/api/v1/projects/{pid}/tasks/next", headers=labeler).json()
    skip = f"/api/v1/assignments/{task['assignment_id']}/skip"
    assert api("post", skip, headers=labeler).status_code == 204
    assert api("get", f"/api/v1/projects/{pid}/tasks/next", headers=labeler).status_code == 204

    for headers in (admin, labeler):
        assert api("get", f"/api/v1/projects/{pid}/progress", headers=headers).status_code == 200
    assert api("get", f"/api/v1/projects/{pid}/agreement", headers=admin).status_code == 200

    export = api("post", f"/api/v1/projects/{pid}/exports", json={}, headers=admin).json()
    assert api("get", f"/api/v1/projects/{pid}/exports", headers=admin).status_code == 200
    assert api("get", f"/api/v1/exports/{export['id']}", headers=admin).status_code == 200
    for name in ("pairs.jsonl", "manifest.json"):
        assert api("get", export["files"][name], headers=admin).status_code == 200

    run = api(
        "post",
        "/api/v1/training-runs",
        json={"kind": "reward", "export_id": export["id"], "base_model": "some/model"},
        headers=admin,
    ).json()
    assert api("get", "/api/v1/training-runs", headers=admin).status_code == 200
    assert api("get", f"/api/v1/training-runs/{run['id']}", headers=admin).status_code == 200
    cancel = f"/api/v1/training-runs/{run['id']}/cancel"
    assert api("post", cancel, headers=admin).status_code == 202

    # The refusals are documented too, in the one error shape.
    assert api("get", "/api/v1/projects").status_code == 401
    assert api("get", f"/api/v1/projects/{pid}/agreement", headers=labeler).status_code in (
        403,
        404,
    )
    assert api("get", "/api/v1/projects/999999", headers=admin).status_code == 404
    assert api("get", "/api/v1/projects/nope", headers=admin).status_code == 422
    dup = {"username": "lab1", "password": "long enough", "role": "labeler"}
    assert api("post", "/api/v1/users", json=dup, headers=admin).status_code == 409
    bad = api("post", f"/api/v1/projects/{pid}/import", content="{}\n", headers=ndjson)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["line"] == 1
    assert api("delete", "/api/v1/tokens/999999", headers=admin).status_code == 404
    assert len(api.seen) >= 30


def test_the_document_names_no_error_shape_the_app_never_sends(api):
    schemas = api.document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "Error" in schemas
    for path, operations in api.document["paths"].items():
        for method, operation in operations.items():
            assert "422" in operation["responses"], f"{method} {path}"
            assert "4XX" in operation["responses"], f"{method} {path}"

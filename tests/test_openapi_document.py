"""The served OpenAPI document declares what the server does (issue 11, defect 7): the
error answers with the app's shape, the bearer scheme, the limits the server enforces, and
a 405 names every method of the path in ``Allow``."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

ERRORS = ("401", "403", "404", "409", "413", "422")


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").json()


def _api_operations(document: dict):
    for path, operations in document["paths"].items():
        if path.startswith("/api/"):
            for method, operation in operations.items():
                yield f"{method.upper()} {path}", operation


def test_every_operation_declares_the_error_answers_and_the_bearer_scheme(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    operations = dict(_api_operations(document))
    assert len(operations) >= 30
    for name, operation in operations.items():
        for code in ERRORS:
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, f"{name} {code}"
        assert {"bearer": []} in operation["security"], name


def test_the_declared_error_shape_is_the_one_sent(client, document):
    answer = client.get("/api/v1/projects")
    assert answer.status_code == 401
    full = {**document["components"]["schemas"]["Error"], "components": document["components"]}
    assert list(Draft202012Validator(full).iter_errors(answer.json())) == []


def test_strings_declare_that_nul_is_refused_as_the_server_refuses_it(
    client, document, admin_headers
):
    schemas = document["components"]["schemas"]
    pattern = schemas["NewProject"]["properties"]["description"]["pattern"]
    assert re.search(pattern, "fine") and not re.search(pattern, "a\x00b")
    member = document["paths"]["/api/v1/projects/{project_id}/members/{username}"]["delete"]
    username = next(p for p in member["parameters"] if p["name"] == "username")
    assert username["schema"]["pattern"] == pattern
    refused = client.post("/api/v1/projects", json={"name": "a\x00b"}, headers=admin_headers)
    assert refused.status_code == 422


def test_the_password_rule_is_in_the_schema(document):
    password = document["components"]["schemas"]["NewUser"]["properties"]["password"]
    assert password["minLength"] == 8


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/projects/1", "GET, PATCH"),
        ("/api/v1/projects", "GET, POST"),
        ("/api/v1/tokens", "GET, POST"),
        ("/api/v1/training-runs", "GET, POST"),
    ],
)
def test_405_names_every_method_of_the_path(client, admin_headers, path, allowed):
    answer = client.request("OPTIONS", path, headers=admin_headers)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["error"]["code"] == "method_not_allowed"

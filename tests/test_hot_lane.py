"""The labeling loop's fast lane (``app/web/hot_lane.py``) answers exactly what the routes
answer: each request is sent twice on the same state, once as an API client sends it (the
lane takes it) and once with an unrelated cookie (the lane leaves it to the route), and
the two answers must match byte for byte, headers included."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services.accounts import tokens
from app.settings import Settings
from app.web import hot_lane
from tests.factories import make_project, make_prompts

ROUTE_ONLY = {"Cookie": "unrelated=1"}  # a cookie sends the request to the route


@pytest.fixture
def lane(monkeypatch) -> list[str]:
    """The paths the lane served, in order."""
    served: list[str] = []
    original = hot_lane._serve

    def spy(scope, *args):
        served.append(scope["path"])
        return original(scope, *args)

    monkeypatch.setattr(hot_lane, "_serve", spy)
    return served


def answer(response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, response.headers.multi_items(), response.content


def both(client, lane, method, path, headers, body=None, *, lane_serves=True):
    """The lane's answer and the route's to the same request; they must be the same."""
    kind = {} if body is None else {"Content-Type": "application/json"}
    sent = {"content": body, "headers": {**kind, **headers}}
    before = len(lane)
    fast = client.request(method, path, **sent)
    assert len(lane) == before + lane_serves, f"lane served {lane[before:]}"
    slow = client.request(method, path, content=body, headers={**sent["headers"], **ROUTE_ONLY})
    assert len(lane) == before + lane_serves  # the route answered the second
    assert answer(fast) == answer(slow)
    return fast


@pytest.fixture
def world(db, make_user, token_for):
    """A labeler (``headers``) in a project of 2 prompts, and another member (``other``)."""
    labeler, other = make_user("labeler"), make_user("labeler")
    project = make_project(db, members=[labeler, other])
    make_prompts(db, project, 2)
    return {
        "labeler": labeler,
        "project": project,
        "headers": token_for(labeler),
        "other": token_for(other),
    }


def next_path(project_id: int | str) -> str:
    return f"/api/v1/projects/{project_id}/tasks/next"


def judgment_path(task: dict) -> str:
    return f"/api/v1/assignments/{task['assignment_id']}/judgment"


def status(client, lane, method, path, headers, body=None, **kw) -> int:
    return both(client, lane, method, path, headers, body, **kw).status_code


def test_next_task_and_its_refusals_are_the_routes(client, lane, db, world, make_user, token_for):
    labeler, headers = world["labeler"], world["headers"]
    held = both(client, lane, "GET", next_path(world["project"].id), headers)
    assert held.status_code == 200 and len(held.json()["completions"]) == 3  # the held lease
    empty = make_project(db, members=[labeler])
    assert status(client, lane, "GET", next_path(empty.id), headers) == 204
    paused = make_project(db, members=[labeler], status="paused")
    assert status(client, lane, "GET", next_path(paused.id), headers) == 409
    assert status(client, lane, "GET", next_path(2**40), headers) == 404
    admin = token_for(make_user("admin"))
    assert status(client, lane, "GET", next_path(world["project"].id), admin) == 403
    unknown = {"Authorization": "Bearer pfl_nobody"}
    assert status(client, lane, "GET", next_path(world["project"].id), unknown) == 401
    # Not the lane's: another scheme, an id past bigint, a query string.
    basic = {"Authorization": "Basic cm9vdDpyb290"}
    assert status(client, lane, "GET", next_path(1), basic, lane_serves=False) == 401
    assert status(client, lane, "GET", next_path(2**63), headers, lane_serves=False) == 422
    query = next_path(world["project"].id) + "?fields=all"
    assert status(client, lane, "GET", query, headers, lane_serves=False) == 200


def test_a_revoked_token_is_refused_by_the_lane_at_once(client, lane, db, world):
    headers = world["headers"]
    assert status(client, lane, "GET", next_path(world["project"].id), headers) == 200
    token = headers["Authorization"].removeprefix("Bearer ")
    (info,) = [t for t in tokens.list_tokens(db, world["labeler"].id) if token.startswith(t.prefix)]
    tokens.revoke_token(db, info.id)
    assert status(client, lane, "GET", next_path(world["project"].id), headers) == 401


def test_judgments_and_their_refusals_are_the_routes(client, lane, world):
    headers = world["headers"]
    task = client.get(next_path(world["project"].id), headers=headers).json()
    ranking = {"ranking": [["c2"], ["c1", "c3"]], "rationale": "c2 answers.", "duration_ms": 900}
    first = client.post(judgment_path(task), json=ranking, headers=headers)
    assert first.status_code == 201 and lane[-1] == judgment_path(task)
    again = both(client, lane, "POST", judgment_path(task), headers, json.dumps(ranking))
    assert again.json() == first.json()  # the same body again: the first judgment
    other = json.dumps({"ranking": [["c1"], ["c2"], ["c3"]]})
    assert status(client, lane, "POST", judgment_path(task), headers, other) == 409
    assert status(client, lane, "POST", judgment_path(task), world["other"], other) == 404
    partial = json.dumps({"ranking": [["c1"]]})  # valid JSON, refused by the service
    assert status(client, lane, "POST", judgment_path(task), headers, partial) == 422


@pytest.mark.parametrize(
    "body",
    [
        '{"ranking": [["c1"], ["c2", "c3"]], "extra": 1}',  # not a JudgmentIn
        '{"ranking": [["c1"], ["c2", "c3"]], "rationale": "\\u0000"}',  # a NUL
        '{"ranking": [["c1"]',  # not JSON
        "",
    ],
    ids=["extra-field", "nul", "malformed", "empty"],
)
def test_a_body_the_lane_does_not_take_reaches_the_route_whole(client, lane, world, body):
    """The lane reads the body, then hands it to the route unchanged (its 422 names the
    field, which it could not without the body)."""
    headers = world["headers"]
    task = client.get(next_path(world["project"].id), headers=headers).json()
    path = judgment_path(task)
    refused = both(client, lane, "POST", path, headers, body, lane_serves=False)
    assert refused.status_code == 422, refused.text


def test_a_body_over_the_limit_or_of_another_type_is_the_routes(client, lane, world, settings):
    headers = world["headers"]
    task = client.get(next_path(world["project"].id), headers=headers).json()
    big = json.dumps(
        {"ranking": [["c1"], ["c2", "c3"]], "rationale": "x" * settings.max_body_bytes}
    )
    assert status(client, lane, "POST", judgment_path(task), headers, big, lane_serves=False) == 413
    plain = {**headers, "Content-Type": "text/plain"}
    partial = '{"ranking": [["c1"]]}'
    refused = status(client, lane, "POST", judgment_path(task), plain, partial, lane_serves=False)
    assert refused == 422


def test_an_unreachable_database_is_the_routes_503(tmp_path, lane):
    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/prefloop?connect_timeout=2",
        data_dir=tmp_path / "data",
        environment="test",
        secret_key="test-secret-key-0123456789",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        down = both(client, lane, "GET", next_path(1), {"Authorization": "Bearer pfl_x"})
    assert down.status_code == 503 and down.headers["retry-after"] == "1"

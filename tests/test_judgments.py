"""Recording judgments: `POST /api/v1/assignments/{id}/judgment` (SPEC §2, §7)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.db.models import Assignment, Judgment, Prompt
from tests.factories import make_project, make_prompts


def take(client, headers, project_id):
    response = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def post(client, headers, task, body):
    return client.post(
        f"/api/v1/assignments/{task['assignment_id']}/judgment", json=body, headers=headers
    )


@pytest.fixture
def setup(client, db, make_user, token_for):
    """A labeler holding a task of 3 completions c1..c3 in a project with ``settings``."""

    def make(**settings):
        user = make_user("labeler")
        headers = token_for(user)
        project = make_project(db, members=[user], **settings)
        make_prompts(db, project, 2)
        return headers, take(client, headers, project.id)

    return make


def fields(response):
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


def test_judgment_is_recorded_with_its_context(client, db, setup):
    headers, task = setup()
    body = {
        "ranking": [["c2"], ["c1", "c3"]],
        "ratings": {"c2": {"helpful": 5}},
        "flags": {"c3": ["unsafe", "unsafe"]},
        "rationale": "c2 answers.",
        "duration_ms": 4200,
    }
    response = post(client, headers, task, body)
    assert response.status_code == 201
    judgment = db.get(Judgment, response.json()["judgment_id"])
    assignment = db.get(Assignment, task["assignment_id"])
    assert judgment.ranking == [["c2"], ["c1", "c3"]]
    assert judgment.ratings == {"c2": {"helpful": 5}} and judgment.flags == {"c3": ["unsafe"]}
    assert (judgment.rationale, judgment.duration_ms) == ("c2 answers.", 4200)
    assert judgment.display_order == assignment.display_order
    assert len(judgment.body_hash) == 64
    assert assignment.status == "submitted"
    prompt = db.get(Prompt, assignment.prompt_id)
    db.refresh(prompt)
    assert (prompt.n_judgments, prompt.slots_taken) == (1, 1)


@pytest.mark.parametrize(
    ("options", "body", "expected"),
    [
        ({}, {"ranking": [["c1"], ["c2"]]}, ["ranking"]),  # missing completion
        ({}, {"ranking": [["c1"], ["c2"], ["c3"], ["c1"]]}, ["ranking"]),  # repeated
        ({}, {"ranking": [["c1"], ["c2"], ["c3"], ["zz"]]}, ["ranking"]),  # unknown id
        ({}, {}, ["ranking"]),  # neither ranking nor reject_all
        ({}, {"ranking": "c1>c2"}, ["ranking"]),
        ({"allow_ties": False}, {"ranking": [["c1", "c2"], ["c3"]]}, ["ranking"]),
        ({"allow_reject_all": False}, {"reject_all": True}, ["reject_all"]),
        ({}, {"reject_all": True, "ranking": [["c1"], ["c2"], ["c3"]]}, ["ranking"]),
        (
            {},
            {"ranking": [["c1", "c2", "c3"]], "ratings": {"c1": {"helpful": 6}}},
            ["ratings.c1.helpful"],
        ),
        (
            {},
            {"ranking": [["c1", "c2", "c3"]], "ratings": {"c1": {"funny": 3}}},
            ["ratings.c1.funny"],
        ),
        ({}, {"ranking": [["c1", "c2", "c3"]], "ratings": {"c9": {"helpful": 3}}}, ["ratings.c9"]),
        ({}, {"ranking": [["c1", "c2", "c3"]], "flags": {"c9": ["x"]}}, ["flags.c9"]),
        (
            {"require_rationale": True},
            {"ranking": [["c1", "c2", "c3"]], "rationale": "  "},
            ["rationale"],
        ),
        ({}, {"ranking": [["c1", "c2", "c3"]], "rationale": "x" * 5001}, ["rationale"]),
        ({}, {"ranking": [["c1", "c2", "c3"]], "duration_ms": -1}, ["duration_ms"]),
        ({}, {"ranking": [["c1", "c2", "c3"]], "extra": 1}, ["extra"]),
        (
            {"allow_ties": False, "require_rationale": True},
            {"ranking": [["c1", "c2", "c3"]], "ratings": {"c1": {"helpful": 0}}},
            ["ranking", "ratings.c1.helpful", "rationale"],
        ),
    ],
)
def test_invalid_judgments_are_422_naming_the_field(client, db, setup, options, body, expected):
    headers, task = setup(**options)
    response = post(client, headers, task, body)
    assert fields(response) == expected
    assert response.json()["error"]["message"].startswith(expected[0])
    assert db.scalar(text("SELECT count(*) FROM judgments")) == 0
    assert db.get(Assignment, task["assignment_id"]).status == "active"


def test_reject_all_when_allowed(client, db, setup):
    headers, task = setup(rating_axes=[])
    response = post(client, headers, task, {"reject_all": True, "rationale": "all wrong"})
    assert response.status_code == 201
    judgment = db.get(Judgment, response.json()["judgment_id"])
    assert judgment.reject_all and judgment.ranking is None


def test_resubmitting_the_same_body_returns_the_first_judgment(client, db, setup):
    headers, task = setup()
    body = {"ranking": [["c1", "c2"], ["c3"]], "flags": {"c1": ["a", "b"]}, "duration_ms": 10}
    first = post(client, headers, task, body)
    same = post(
        client,
        headers,
        task,
        {"ranking": [["c2", "c1"], ["c3"]], "flags": {"c1": ["b", "a"]}, "duration_ms": 99},
    )
    assert first.status_code == same.status_code == 201
    assert first.json() == same.json()
    other = post(client, headers, task, {"ranking": [["c3"], ["c1", "c2"]]})
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    assert db.scalar(text("SELECT count(*) FROM judgments")) == 1


def test_someone_elses_assignment_is_404(client, db, setup, make_user, token_for):
    _, task = setup()
    intruder = token_for(make_user("labeler"))
    response = post(client, intruder, task, {"ranking": [["c1", "c2", "c3"]]})
    assert response.status_code == 404
    assert post(client, intruder, {"assignment_id": 999999}, {}).status_code == 404


def test_agreement_is_kept_per_prompt(client, db, make_user, token_for):
    users = [make_user("labeler") for _ in range(2)]
    project = make_project(db, k=2, members=users)
    (prompt_id,) = make_prompts(db, project, 1)
    for user in users:
        task = take(client, token_for(user), project.id)
        assert (
            post(client, token_for(user), task, {"ranking": [["c1"], ["c2"], ["c3"]]}).status_code
            == 201
        )
    prompt = db.get(Prompt, prompt_id)
    db.refresh(prompt)
    assert (prompt.n_judgments, prompt.agreement, prompt.kendall_w) == (2, 1.0, 1.0)


@pytest.mark.parametrize(
    ("second", "target"), [([["c3"], ["c2"], ["c1"]], 3), ([["c1"], ["c2"], ["c3"]], 2)]
)
def test_adaptive_overlap_raises_target_of_contested_prompts(
    client, db, make_user, token_for, second, target
):
    users = [make_user("labeler") for _ in range(4)]
    project = make_project(db, k=2, members=users, adaptive={"max_labels": 3, "min_agreement": 0.8})
    (prompt_id,) = make_prompts(db, project, 1)
    for user, ranking in zip(users[:2], [[["c1"], ["c2"], ["c3"]], second], strict=True):
        task = take(client, token_for(user), project.id)
        assert post(client, token_for(user), task, {"ranking": ranking}).status_code == 201
    prompt = db.get(Prompt, prompt_id)
    db.refresh(prompt)
    assert prompt.target_labels == target
    third = client.get(f"/api/v1/projects/{project.id}/tasks/next", headers=token_for(users[2]))
    assert third.status_code == (200 if target == 3 else 204)
    if target == 3:  # a third opposing label does not raise it beyond max_labels
        assert (
            post(
                client, token_for(users[2]), third.json(), {"ranking": [["c2"], ["c1"], ["c3"]]}
            ).status_code
            == 201
        )
        db.refresh(prompt)
        assert prompt.target_labels == 3
        assert (
            client.get(
                f"/api/v1/projects/{project.id}/tasks/next", headers=token_for(users[3])
            ).status_code
            == 204
        )


def test_paused_project_keeps_work_in_progress(client, db, setup):
    headers, task = setup()
    db.execute(text("UPDATE projects SET status = 'paused'"))
    db.commit()
    assert post(client, headers, task, {"ranking": [["c1", "c2", "c3"]]}).status_code == 201
    assert db.scalar(select(Judgment.id)) is not None


def test_archived_project_refuses_judgments(client, db, setup):
    headers, task = setup()
    db.execute(text("UPDATE projects SET status = 'archived'"))
    db.commit()
    response = post(client, headers, task, {"ranking": [["c1", "c2", "c3"]]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "project_closed"
    assert db.scalar(select(Judgment.id)) is None

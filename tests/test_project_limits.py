"""The project limits live in the service, so every door (API, pages, CLI) gets them:
name 1..200 characters, description at most 10 000 (issue 10 §6)."""

from __future__ import annotations

import pytest

from app.domain.errors import ValidationFailed
from app.services import projects
from tests.factories import make_project

LONG = "d" * 10_001


def fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d["field"] for d in exc.value.details]


def test_create_refuses_a_long_description_and_names_every_problem(db):
    with pytest.raises(ValidationFailed) as exc:
        projects.create_project(db, " ", {"labels_per_prompt": 0}, description=LONG)
    assert fields(exc) == ["name", "description", "settings.labels_per_prompt"]
    projects.create_project(db, "fits", description="d" * 10_000)


def test_update_refuses_a_long_description_and_changes_nothing(db):
    project = make_project(db)
    with pytest.raises(ValidationFailed) as exc:
        projects.update_project(db, project, description=LONG, settings={"lease_minutes": 0})
    assert fields(exc) == ["description", "settings.lease_minutes"]
    db.refresh(project)
    assert project.description == "" and project.settings["lease_minutes"] == 30


def test_the_api_answers_the_service_limit(client, db, admin_headers):
    project = make_project(db)
    response = client.patch(
        f"/api/v1/projects/{project.id}", json={"description": LONG}, headers=admin_headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"line": None, "field": "description", "message": "at most 10,000 characters"}
    ]


def test_the_api_shows_every_setting_in_effect_for_a_project_saved_before_it_existed(
    client, db, admin_headers
):
    """A row stored before ``render`` existed answers its default, beside its own values."""
    project = make_project(db, k=2)
    project.settings = {"labels_per_prompt": 2}  # as a project of an older version stored it
    db.commit()
    shown = client.get(f"/api/v1/projects/{project.id}", headers=admin_headers).json()
    assert shown["settings"]["labels_per_prompt"] == 2
    assert shown["settings"]["render"] == "markdown"
    assert shown["settings"]["allow_ties"] is True

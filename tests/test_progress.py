"""Progress of a project (SPEC §7 `GET /api/v1/projects/{id}/progress`): prompts by
state, judgments per hour, per-labeler counts and times; labelers see only their own."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.db.models import Assignment, Judgment, Prompt
from app.services import importing
from app.services.labeling.progress import project_progress
from tests.factories import add_members, make_project, make_prompts


def judge(db, project, prompt_id, user, duration_ms):
    db.add(
        Judgment(
            project_id=project.id,
            prompt_id=prompt_id,
            labeler_id=user.id,
            ranking=[["c1"], ["c2", "c3"]],
            duration_ms=duration_ms,
        )
    )
    db.execute(
        update(Prompt)
        .where(Prompt.id == prompt_id)
        .values(n_judgments=Prompt.n_judgments + 1, slots_taken=Prompt.slots_taken + 1)
    )
    db.commit()


def lease(db, project, prompt_id, user, *, status="active", minutes=30):
    db.add(
        Assignment(
            project_id=project.id,
            prompt_id=prompt_id,
            labeler_id=user.id,
            status=status,
            display_order=["c1", "c2", "c3"],
            expires_at=datetime.now(UTC) + timedelta(minutes=minutes),
        )
    )
    db.commit()


@pytest.fixture
def scene(db, make_user):
    """k=2: p0 complete, p1 judged once, p2 leased, p3 lease expired, p4 skipped once,
    one gold prompt, one imported prompt with an external judgment."""
    alice, bob, carol = (make_user("labeler", n) for n in ("alice", "bob", "carol"))
    admin = make_user("admin", "boss")
    project = make_project(db, k=2, members=[alice, bob, carol])
    p = make_prompts(db, project, 5)
    make_prompts(db, project, 1, gold=[["c1"], ["c2"], ["c3"]])
    judge(db, project, p[0], alice, 2000)
    judge(db, project, p[0], bob, 6000)
    judge(db, project, p[1], alice, 4000)
    lease(db, project, p[2], bob)
    lease(db, project, p[3], alice, minutes=-5)
    lease(db, project, p[4], bob, status="skipped")
    record = {
        "id": "ext1",
        "prompt": "q",
        "completions": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}],
        "judgments": [{"labeler": "ext:old", "ranking": [["a"], ["b"]]}],
    }
    importing.import_file(db, project, io.BytesIO(json.dumps(record).encode()))
    return project, admin, alice, bob


def test_admin_sees_states_hours_and_every_labeler(db, scene):
    project, admin, alice, bob = scene
    progress = project_progress(db, admin, project.id)
    assert progress.scope == "project"
    states = progress.prompts
    assert (states.total, states.gold, states.complete, states.in_progress, states.pending) == (
        7,
        1,
        1,
        3,
        2,
    )
    assert progress.judgments == 4
    hours = progress.judgments_per_hour
    assert len(hours) == 24 and hours[-1].count == 3  # the imported one is left out
    assert sum(h.count for h in hours) == 3
    assert hours[0].hour < hours[-1].hour and hours[-1].hour.endswith(":00:00Z")
    by_name = {row.labeler: row for row in progress.per_labeler}
    assert set(by_name) == {"alice", "bob", "carol", "ext:old"}
    assert (by_name["alice"].judgments, by_name["alice"].median_seconds) == (2, 3.0)
    assert (by_name["bob"].judgments, by_name["bob"].skipped) == (1, 1)
    assert by_name["carol"].judgments == 0 and by_name["carol"].median_seconds is None
    assert by_name["ext:old"].external and by_name["ext:old"].median_seconds is None
    assert progress.median_seconds == 4.0 and progress.mean_seconds == 4.0
    assert progress.percent_complete == 17  # 1 of 6 non-gold prompts


def test_labeler_sees_only_their_own_numbers(db, scene):
    project, _, alice, _ = scene
    progress = project_progress(db, alice, project.id)
    assert progress.scope == "self" and progress.prompts is None
    assert progress.judgments == 2
    assert [row.labeler for row in progress.per_labeler] == ["alice"]
    assert sum(h.count for h in progress.judgments_per_hour) == 2
    assert progress.median_seconds == 3.0


def test_progress_api_for_admin_member_and_stranger(client, db, scene, make_user, token_for):
    project, admin, alice, _ = scene
    url = f"/api/v1/projects/{project.id}/progress"
    body = client.get(url, headers=token_for(admin)).json()
    assert body["prompts"] == {"total": 7, "pending": 2, "in_progress": 3, "complete": 1, "gold": 1}
    assert body["judgments"] == 4 and len(body["judgments_per_hour"]) == 24
    own = client.get(url, headers=token_for(alice)).json()
    assert own["scope"] == "self" and own["prompts"] is None
    assert [row["labeler"] for row in own["per_labeler"]] == ["alice"]
    stranger = make_user("labeler", "mallory")
    assert client.get(url, headers=token_for(stranger)).status_code == 404
    add_members(db, project, [stranger])
    assert client.get(url, headers=token_for(stranger)).json()["judgments"] == 0


def test_empty_project_has_zero_progress(db, make_user):
    admin = make_user("admin", "boss")
    progress = project_progress(db, admin, make_project(db).id)
    assert progress.prompts.total == 0 and progress.percent_complete == 0
    assert progress.per_labeler == [] and progress.median_seconds is None
    assert [h.count for h in progress.judgments_per_hour] == [0] * 24

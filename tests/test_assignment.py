"""Handing out tasks: `GET /api/v1/projects/{id}/tasks/next` (SPEC §2, §7)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update

from app.db.models import Assignment, Prompt
from tests.factories import make_project, make_prompts


@pytest.fixture
def labeler(make_user, token_for):
    def make(name: str | None = None):
        user = make_user("labeler", name)
        return user, token_for(user)

    return make


def take(client, headers, project_id):
    return client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)


def judge(client, headers, task, **extra):
    body = {"ranking": [[c["id"]] for c in task["completions"]], **extra}
    return client.post(
        f"/api/v1/assignments/{task['assignment_id']}/judgment", json=body, headers=headers
    )


def test_next_gives_a_task_in_display_order_and_is_idempotent(client, db, labeler):
    user, headers = labeler()
    project = make_project(db, members=[user])
    make_prompts(db, project, 2, completions=4)
    first = take(client, headers, project.id)
    assert first.status_code == 200
    task = first.json()
    assert set(task) == {"assignment_id", "prompt", "completions", "expires_at"}
    assignment = db.get(Assignment, task["assignment_id"])
    assert [c["id"] for c in task["completions"]] == assignment.display_order
    assert sorted(assignment.display_order) == ["c1", "c2", "c3", "c4"]
    assert all(c["text"].startswith("Completion ") for c in task["completions"])
    again = take(client, headers, project.id).json()
    assert again == task
    slots = db.scalars(select(Prompt.slots_taken).where(Prompt.project_id == project.id))
    assert sorted(slots) == [0, 1]


def test_completions_are_shuffled_per_assignment(client, db, make_user, token_for):
    users = [make_user("labeler") for _ in range(8)]
    project = make_project(db, k=8, members=users)
    make_prompts(db, project, 1, completions=6)
    orders = {
        tuple(c["id"] for c in take(client, token_for(u), project.id).json()["completions"])
        for u in users
    }
    assert len(orders) > 1


def test_nearest_completion_first(client, db, labeler):
    user, headers = labeler()
    project = make_project(db, k=3, members=[user])
    ids = make_prompts(db, project, 4)
    for pid, slots in zip(ids, [0, 2, 1, 2], strict=True):
        db.execute(update(Prompt).where(Prompt.id == pid).values(slots_taken=slots))
    db.commit()
    got = db.get(Assignment, take(client, headers, project.id).json()["assignment_id"])
    assert got.prompt_id == ids[1]  # most slots taken, lowest id among equals


def test_a_prompt_is_never_handed_out_beyond_k(client, db, make_user, token_for):
    users = [make_user("labeler") for _ in range(3)]
    project = make_project(db, k=2, members=users)
    make_prompts(db, project, 1)
    assert take(client, token_for(users[0]), project.id).status_code == 200
    assert take(client, token_for(users[1]), project.id).status_code == 200
    assert take(client, token_for(users[2]), project.id).status_code == 204
    prompt = db.scalar(select(Prompt).where(Prompt.project_id == project.id))
    db.refresh(prompt)
    assert prompt.slots_taken == 2


def test_a_labeler_never_gets_a_prompt_twice(client, db, labeler):
    user, headers = labeler()
    project = make_project(db, members=[user])
    make_prompts(db, project, 3)
    seen = set()
    while (response := take(client, headers, project.id)).status_code == 200:
        task = response.json()
        prompt_id = db.get(Assignment, task["assignment_id"]).prompt_id
        assert prompt_id not in seen
        seen.add(prompt_id)
        assert judge(client, headers, task).status_code == 201
    assert response.status_code == 204 and len(seen) == 3


def test_expired_lease_frees_its_slot_and_a_late_submit_writes_nothing(client, db, labeler):
    (alice, alice_h), (bob, bob_h) = labeler(), labeler()
    project = make_project(db, k=1, lease_minutes=1, members=[alice, bob])
    make_prompts(db, project, 1)
    task = take(client, alice_h, project.id).json()
    assert take(client, bob_h, project.id).status_code == 204
    db.execute(
        text("UPDATE assignments SET expires_at = now() - interval '1 minute' WHERE id = :id"),
        {"id": task["assignment_id"]},
    )
    db.commit()
    late = judge(client, alice_h, task)  # expired but not yet reclaimed
    assert late.status_code == 409 and late.json()["error"]["code"] == "expired"
    bob_task = take(client, bob_h, project.id)
    assert bob_task.status_code == 200
    assert db.get(Assignment, task["assignment_id"]).status == "expired"
    later = judge(client, alice_h, task)  # reclaimed now
    assert later.status_code == 409 and later.json()["error"]["code"] == "expired"
    assert db.scalar(text("SELECT count(*) FROM judgments")) == 0
    prompt = db.scalar(select(Prompt).where(Prompt.project_id == project.id))
    db.refresh(prompt)
    assert (prompt.slots_taken, prompt.n_judgments) == (1, 0)
    assert take(client, alice_h, project.id).status_code == 204  # never offered again


def test_gold_prompts_are_mixed_in_hidden_and_beyond_k(client, db, make_user, token_for):
    users = [make_user("labeler") for _ in range(3)]
    project = make_project(db, k=1, gold_rate=1.0, members=users)
    gold_id = make_prompts(db, project, 1, gold=[["c1"], ["c2"], ["c3"]], prefix="g")[0]
    regular = make_prompts(db, project, 3)
    for user in users:
        response = take(client, token_for(user), project.id)
        assert "gold" not in response.text and "is_gold" not in response.text
        assignment = db.get(Assignment, response.json()["assignment_id"])
        assert assignment.prompt_id == gold_id and assignment.is_gold
        assert judge(client, token_for(user), response.json()).status_code == 201
        follow = db.get(
            Assignment, take(client, token_for(user), project.id).json()["assignment_id"]
        )
        assert follow.prompt_id in regular  # each gold prompt once per labeler


def test_without_gold_rate_gold_prompts_are_not_handed_out(client, db, labeler):
    user, headers = labeler()
    project = make_project(db, members=[user])
    make_prompts(db, project, 2, gold=[["c1", "c2", "c3"]], prefix="g")
    assert take(client, headers, project.id).status_code == 204


def test_access_rules(client, db, labeler, make_user, token_for):
    (member, member_h), (outsider, outsider_h) = labeler(), labeler()
    project = make_project(db, members=[member])
    other = make_project(db, members=[outsider])
    make_prompts(db, project, 2)
    assert take(client, outsider_h, project.id).status_code == 404
    assert take(client, member_h, other.id).status_code == 404
    assert take(client, member_h, 987654).status_code == 404
    admin = make_user("admin")
    forbidden = take(client, token_for(admin), project.id)
    assert forbidden.status_code == 403
    assert client.get(f"/api/v1/projects/{project.id}/tasks/next").status_code == 401


def test_admin_member_may_label(client, db, make_user, token_for):
    admin = make_user("admin")
    project = make_project(db, members=[admin])
    make_prompts(db, project, 1)
    assert take(client, token_for(admin), project.id).status_code == 200


@pytest.mark.parametrize("status", ["paused", "draft", "archived"])
def test_closed_project_gives_no_tasks(client, db, labeler, status):
    user, headers = labeler()
    project = make_project(db, members=[user], status=status)
    make_prompts(db, project, 2)
    response = take(client, headers, project.id)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "project_closed"
    assert db.scalar(text("SELECT count(*) FROM assignments")) == 0


def test_skip_frees_the_slot_and_never_comes_back(client, db, labeler):
    (alice, alice_h), (bob, bob_h) = labeler(), labeler()
    project = make_project(db, k=1, members=[alice, bob])
    make_prompts(db, project, 1)
    task = take(client, alice_h, project.id).json()
    assert (
        client.post(f"/api/v1/assignments/{task['assignment_id']}/skip", headers=bob_h).status_code
        == 404
    )
    skip = client.post(f"/api/v1/assignments/{task['assignment_id']}/skip", headers=alice_h)
    assert skip.status_code == 204 and skip.content == b""
    assert (
        client.post(
            f"/api/v1/assignments/{task['assignment_id']}/skip", headers=alice_h
        ).status_code
        == 204
    )  # again: no-op
    assert db.get(Assignment, task["assignment_id"]).status == "skipped"
    assert take(client, alice_h, project.id).status_code == 204
    bob_task = take(client, bob_h, project.id).json()
    assert judge(client, bob_h, bob_task).status_code == 201
    assert (
        client.post(
            f"/api/v1/assignments/{bob_task['assignment_id']}/skip", headers=bob_h
        ).status_code
        == 409
    )
    late = judge(client, alice_h, task)
    assert late.status_code == 409 and late.json()["error"]["code"] == "conflict"


def test_chat_prompt_is_returned_as_messages(client, db, labeler):
    user, headers = labeler()
    project = make_project(db, members=[user])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    make_prompts(db, project, 1, prompt=messages)
    assert take(client, headers, project.id).json()["prompt"] == messages

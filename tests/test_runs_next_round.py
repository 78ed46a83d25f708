"""A generate run's completions become the next labeling round (app/services/runs/next_round.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.db.models import Completion, Project, ProjectMember, Prompt
from app.domain.errors import Conflict, ValidationFailed
from app.services.runs import next_round
from tests.factories import make_project
from tests.helpers.runs import finished_run


def generated_file(tmp_path, n: int = 3):
    rows = [
        {
            "id": f"q{i}",
            "prompt": "Why is the sky blue?",
            "completions": [
                {"id": "c1", "text": "Rayleigh scattering.", "model": "base+5"},
                {"id": "c2", "text": "Because.", "model": "base"},
            ],
        }
        for i in range(n)
    ]
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_round_project_copies_settings_and_members_and_is_idempotent(db, make_user, tmp_path):
    labeler = make_user("labeler")
    source = make_project(db, k=2, members=[labeler], guidelines="Be *fair*.")
    policy = finished_run(db, "ppo")
    run = finished_run(
        db, "generate", "running", parent_run_id=policy.id, project_id=source.id, base_model="base"
    )
    path = generated_file(tmp_path)
    project = next_round.create_round(db, run.id, path)
    assert project.name == f"Next round: run {run.id} (ppo run {policy.id} vs base)"
    assert project.settings["labels_per_prompt"] == 2
    assert project.settings["guidelines"] == "Be *fair*."
    assert run.result_project_id == project.id
    members = db.scalars(
        select(ProjectMember.user_id).where(ProjectMember.project_id == project.id)
    ).all()
    assert members == [labeler.id]
    count = (
        select(func.count())
        .select_from(Completion)
        .join(Prompt)
        .where(Prompt.project_id == project.id)
    )
    assert db.scalar(count) == 6

    again = next_round.create_round(db, run.id, path)  # a retried attempt
    assert again.id == project.id and db.scalar(count) == 6
    rounds = select(func.count()).where(Project.name.like(f"Next round: run {run.id} %"))
    assert db.scalar(rounds) == 1


def test_a_refused_import_leaves_no_project_behind(db, tmp_path):
    """The project, its members and the import are one unit of work."""
    run = finished_run(db, "generate", "running", base_model="base")
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "q1", "prompt": "Hi", "completions": [{"id": "c1", "text": "x"}]}\n')
    with pytest.raises(ValidationFailed):
        next_round.create_round(db, run.id, path)
    db.expire_all()
    assert db.get(type(run), run.id).result_project_id is None
    rounds = select(func.count()).where(Project.name.like(f"Next round: run {run.id} %"))
    assert db.scalar(rounds) == 0


def test_only_generate_runs_make_a_round(db, tmp_path):
    reward = finished_run(db, "reward")
    with pytest.raises(Conflict):
        next_round.create_round(db, reward.id, generated_file(tmp_path))


def test_comparison_of_an_unlabeled_round_has_no_win_rate_yet(db, tmp_path):
    run = finished_run(db, "generate", "running", base_model="base")
    project = next_round.create_round(db, run.id, generated_file(tmp_path))
    result = next_round.comparison(db, project.id)
    assert result["models"] == ["base", "base+5"] and result["run_id"] == run.id
    assert result["head_to_head"]["model"] == "base+5"
    assert result["head_to_head"]["win_rate"] is None and result["n_prompts"] == 0

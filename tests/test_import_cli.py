"""`prefloop import` and `prefloop demo --no-serve` (SPEC §8) on a fresh database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db.models import Project, ProjectMember, Prompt, User
from app.services.accounts.users import LoginPolicy, login
from app.services.demo import DEMO_PROMPTS, PROJECT_NAME
from app.services.projects import create_project
from tests.helpers.imports import jsonl, row


@pytest.fixture
def fresh(databases, monkeypatch, tmp_path):
    """A fresh committed database that the CLI reaches through DATABASE_URL."""
    url = databases.new()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def run(*args: str):
    return CliRunner().invoke(cli_app, list(args))


def prompt_count(session: Session, project_id: int | None = None) -> int:
    session.rollback()
    stmt = select(func.count()).select_from(Prompt)
    if project_id is not None:
        stmt = stmt.where(Prompt.project_id == project_id)
    return session.scalar(stmt)


def test_import_by_name_and_id_then_again(fresh, tmp_path):
    project = create_project(fresh, "CLI project")
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(jsonl(row("p1"), row("p2")))
    result = run("import", "CLI project", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 2, skipped 0" in result.output
    again = run("import", str(project.id), str(path))
    assert again.exit_code == 0 and "imported 0, skipped 2" in again.output
    assert prompt_count(fresh) == 2


def test_import_errors_are_printed_by_line_and_exit_1(fresh, tmp_path):
    create_project(fresh, "CLI project")
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        jsonl(row("p1"), row("p2", completions=[{"id": "a", "text": "x"}, {"id": "b", "text": 3}]))
    )
    result = run("import", "CLI project", str(path))
    assert result.exit_code == 1
    assert "line 2: completions[1].text: must be a string, got a number" in result.output
    assert prompt_count(fresh) == 0


def test_import_csv_by_extension_and_pairs_by_option(fresh, tmp_path):
    create_project(fresh, "CLI project")
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("prompt,completion_1,completion_2\nq,a,b\n")
    assert "imported 1" in run("import", "CLI project", str(csv_path)).output
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(jsonl({"prompt": "q", "chosen": "yes", "rejected": "no"}))
    result = run("import", "CLI project", str(pairs), "--format", "pairs", "--labeler", "ext:hh")
    assert result.exit_code == 0, result.output
    fresh.rollback()
    assert fresh.scalar(select(User.is_external).where(User.username == "ext:hh"))


def test_import_into_unknown_project_fails_clearly(fresh, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl(row()))
    result = run("import", "nope", str(path))
    assert result.exit_code == 1 and "no project 'nope'" in result.output


def test_demo_seeds_users_project_and_prompts_idempotently(fresh):
    result = run("demo", "--no-serve")
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8000/login" in result.output
    assert "alice-demo-pass" in result.output and "demo credentials" in result.output
    project = fresh.scalar(select(Project).where(Project.name == PROJECT_NAME))
    assert project.status == "active" and project.settings["labels_per_prompt"] == 2
    assert project.settings["guidelines"]
    members = fresh.scalars(
        select(User.username).join(ProjectMember).where(ProjectMember.project_id == project.id)
    ).all()
    assert sorted(members) == ["alice", "bob"]
    lines = [line for line in DEMO_PROMPTS.read_text().splitlines() if line.strip()]
    assert prompt_count(fresh, project.id) == len(lines) >= 24
    assert login(fresh, "alice", "alice-demo-pass", "test", LoginPolicy()).role == "labeler"
    assert login(fresh, "admin", "admin-demo-pass", "test", LoginPolicy()).role == "admin"
    again = run("demo", "--no-serve")
    assert again.exit_code == 0 and "password unchanged" in again.output
    assert prompt_count(fresh, project.id) == len(lines)

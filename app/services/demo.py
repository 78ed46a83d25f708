"""``prefloop demo``: an admin, two labelers and a demo project with real prompts.

Idempotent: users and the project are created when missing and left alone when present
(an existing user keeps their password: the demo never resets a real account), and the
import skips the prompts already there. Each step is its own transaction, so a seed
interrupted half-way is completed by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Project, User
from app.services import importing, projects, users

DEMO_PROMPTS = Path(__file__).resolve().parents[1] / "demo" / "prompts.jsonl"
PROJECT_NAME = "Demo: assistant replies"
DEMO_USERS = (
    ("admin", "admin", "admin-demo-pass"),
    ("alice", "labeler", "alice-demo-pass"),
    ("bob", "labeler", "bob-demo-pass"),
)
GUIDELINES = """\
Rank the replies from **best** to **worst** for the person who asked.

1. **Helpful**: does it answer the question that was asked, completely and concretely?
2. **Honest**: is it correct? A confident wrong answer is worse than a short right one.
3. **Harmless**: would following it hurt the person or anyone else?

Put two replies in the same tier only when you truly cannot choose between them.
If every reply is unacceptable, use *All unacceptable*.
"""


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str | None
    """None when the user already existed (their password was left unchanged)."""


@dataclass(frozen=True)
class DemoSeed:
    project_id: int
    logins: list[DemoLogin]
    imported: int
    skipped: int


def _ensure_user(session: Session, username: str, role: str, password: str) -> DemoLogin:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        return DemoLogin(username, role, None)
    users.create_user(session, username, password, role)
    return DemoLogin(username, role, password)


def _ensure_project(session: Session) -> Project:
    project = session.scalar(select(Project).where(Project.name == PROJECT_NAME))
    if project is not None:
        return project
    return projects.create_project(
        session,
        PROJECT_NAME,
        {"labels_per_prompt": 2, "guidelines": GUIDELINES},
        description="Real questions with replies of mixed quality: rank them.",
        status="active",
    )


def seed_demo(session: Session, prompts_file: Path = DEMO_PROMPTS) -> DemoSeed:
    """Create (when missing) the demo users and project, and import the demo prompts."""
    logins = [_ensure_user(session, *spec) for spec in DEMO_USERS]
    project = _ensure_project(session)
    for login in logins:
        if login.role == "labeler":
            projects.add_member(session, project, login.username)
    with prompts_file.open("rb") as stream:
        result = importing.import_file(session, project, stream)
    return DemoSeed(project.id, logins, result.imported, result.skipped)

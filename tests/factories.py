"""Test data written straight through the models (no import service needed).

Every helper commits, so the rows are visible to a live server when the session is bound
to a real database (inside the `db` fixture a commit only releases a SAVEPOINT).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Completion, Project, ProjectMember, Prompt, User
from app.services.projects import create_project

_names = itertools.count(1)


def make_project(
    db: Session,
    k: int = 3,
    *,
    members: Iterable[User] = (),
    name: str | None = None,
    status: str = "active",
    **settings: Any,
) -> Project:
    """A project with ``labels_per_prompt=k`` and any other settings, plus members."""
    project = create_project(
        db, name or f"project-{next(_names)}", {"labels_per_prompt": k, **settings}, status=status
    )
    add_members(db, project, members)
    return project


def add_members(db: Session, project: Project, users: Iterable[User]) -> None:
    rows = [{"project_id": project.id, "user_id": u.id} for u in users]
    if rows:
        db.execute(pg_insert(ProjectMember).values(rows).on_conflict_do_nothing())
        db.commit()


def make_prompts(
    db: Session,
    project: Project,
    n: int,
    completions: int = 3,
    *,
    gold: Sequence[Sequence[str]] | None = None,
    target: int | None = None,
    prompt: Any = None,
    texts: Sequence[str] | None = None,
    prefix: str = "p",
) -> list[int]:
    """``n`` prompts with completions ``c1..cN`` (texts from ``texts`` when given); a
    ``gold`` ranking makes them gold prompts. Returns the prompt ids in order."""
    k = target or project.settings["labels_per_prompt"]
    start = next(_names) * 1_000_000
    rows = [
        {
            "project_id": project.id,
            "external_id": f"{prefix}-{start + i}",
            "prompt": prompt if prompt is not None else f"Prompt number {i}?",
            "gold": [list(t) for t in gold] if gold else None,
            "is_gold": gold is not None,
            "target_labels": k,
        }
        for i in range(n)
    ]
    ids = list(db.scalars(insert(Prompt).returning(Prompt.id, sort_by_parameter_order=True), rows))
    bodies = texts or [f"Completion {j} of the prompt." for j in range(1, completions + 1)]
    completion_rows = [
        {
            "prompt_id": pid,
            "external_id": f"c{j}",
            "position": j,
            "text": bodies[j - 1],
            "model": "test",
            "metadata_": {},
        }
        for pid in ids
        for j in range(1, len(bodies) + 1)
    ]
    db.execute(insert(Completion), completion_rows)
    db.commit()
    return ids

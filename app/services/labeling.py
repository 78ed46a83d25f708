"""The labeler page's use cases: what the page shows (project, current task, progress),
and submitting or skipping from the page. The work is done by ``assignment`` (leases)
and ``judgments`` (closing them); this module composes them for the page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.models import User
from app.services.assignment import LabelingProject, Task, labeling_project, next_task


@dataclass(frozen=True)
class Progress:
    """The labeler's judgments in a project and the prompts they can still get."""

    done: int
    remaining: int

    @property
    def total(self) -> int:
        return self.done + self.remaining

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


@dataclass(frozen=True)
class LabelView:
    """Everything the labeler page renders: ``task`` is None when nothing is left (or the
    project is not active: see ``project.active``)."""

    project: LabelingProject
    task: Task | None
    progress: Progress


_PROGRESS = text(
    """
    SELECT
      (SELECT count(*) FROM judgments j
       WHERE j.project_id = :pid AND j.labeler_id = :uid) AS done,
      (SELECT count(*) FROM assignments a
       WHERE a.project_id = :pid AND a.labeler_id = :uid AND a.status = 'active'
         AND a.expires_at > now()) AS held,
      (SELECT count(*) FROM prompts p
       WHERE p.project_id = :pid AND NOT p.is_gold AND p.slots_taken < p.target_labels
         AND NOT EXISTS (SELECT 1 FROM assignments a
                         WHERE a.prompt_id = p.id AND a.labeler_id = :uid)) AS open
    """
)


def progress(session: Session, user: User, project_id: int) -> Progress:
    """Judgments made, and prompts still open to this labeler (a held lease included).

    Open prompts may still be taken by others first, so ``remaining`` is an upper bound."""
    row = session.execute(_PROGRESS, {"pid": project_id, "uid": user.id}).one()
    session.rollback()  # read-only: end the transaction
    return Progress(done=row.done, remaining=row.held + row.open)


def label_view(session: Session, user: User, project_id: int) -> LabelView:
    """The page for ``user`` in a project: their task (leased now if needed) and progress.

    Raises NotFound / Forbidden like ``next_task``; a closed project gives no task."""
    project = labeling_project(session, user, project_id)
    session.rollback()
    task = next_task(session, user, project_id) if project.active else None
    return LabelView(project, task, progress(session, user, project_id))

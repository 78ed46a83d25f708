"""The labeler page's view (``label_view``): the project, the current task, and the
labeler's own progress in it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.models import User
from app.domain.errors import DomainError
from app.services.labeling.assignment import (
    LEASE_RACES,
    LabelingProject,
    Task,
    labeling_project,
    lease_task,
    with_retry,
)


@dataclass(frozen=True)
class OwnProgress:
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
    progress: OwnProgress


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


def _progress(session: Session, user: User, project_id: int) -> OwnProgress:
    """Judgments made, and prompts still open to this labeler (a held lease included).

    Open prompts may still be taken by others first, so ``remaining`` is an upper bound."""
    row = session.execute(_PROGRESS, {"pid": project_id, "uid": user.id}).one()
    return OwnProgress(done=row.done, remaining=row.held + row.open)


def label_view(session: Session, user: User, project_id: int) -> LabelView:
    """The page for ``user`` in a project: their task (leased now if needed) and progress.

    One unit of work: the project, the lease and the progress are read and written in one
    transaction, committed once (retried like ``next_task`` when a concurrent lease wins).
    Raises NotFound / Forbidden like ``next_task``; a closed project gives no task."""

    def work() -> LabelView:
        try:
            project = labeling_project(session, user, project_id)
            task = lease_task(session, user, project_id) if project.active else None
            view = LabelView(project, task, _progress(session, user, project_id))
        except DomainError:
            session.rollback()
            raise
        session.commit()
        return view

    return with_retry(session, work, constraints=LEASE_RACES)

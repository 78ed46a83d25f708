"""``GET /api/v1/projects/{id}/progress`` (SPEC §7): an admin sees the project, a
labeler their own numbers. The answer is the service's ``ProjectProgress`` as it is."""

from __future__ import annotations

from fastapi import APIRouter

from app.services.labeling.progress import ProjectProgress, project_progress
from app.web.deps import CurrentUser, SessionDep
from app.web.inputs import DbId

router = APIRouter(prefix="/api/v1/projects", tags=["progress"])


@router.get("/{project_id}/progress", response_model=ProjectProgress)
def get_progress(project_id: DbId, db: SessionDep, user: CurrentUser) -> ProjectProgress:
    """Prompts by state (admins), judgments, judgments per hour (last 24 h, UTC),
    per-labeler counts and time per task."""
    return project_progress(db, user, project_id)

"""``GET /api/v1/projects/{id}/progress`` (SPEC §7): an admin sees the project, a
labeler their own numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from app.services.progress import project_progress
from app.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1/projects", tags=["progress"])


class PromptStatesOut(BaseModel):
    total: int
    pending: int
    in_progress: int
    complete: int
    gold: int


class HourOut(BaseModel):
    hour: str
    count: int


class LabelerOut(BaseModel):
    labeler: str
    external: bool
    judgments: int
    skipped: int
    median_seconds: float | None
    mean_seconds: float | None
    last_at: datetime | None


class ProgressOut(BaseModel):
    project_id: int
    scope: str
    prompts: PromptStatesOut | None
    judgments: int
    judgments_per_hour: list[HourOut]
    per_labeler: list[LabelerOut]
    median_seconds: float | None
    mean_seconds: float | None


@router.get("/{project_id}/progress", response_model=ProgressOut)
def get_progress(project_id: int, db: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Prompts by state (admins), judgments, judgments per hour (last 24 h, UTC),
    per-labeler counts and time per task."""
    return project_progress(db, user, project_id).as_json()

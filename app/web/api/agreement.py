"""Agreement figures of a project (SPEC §6, §7). Admin only: ``per_labeler`` rates people."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.services import agreement
from app.services.accounts import policy
from app.services.runs import suspects
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import DbId

router = APIRouter(prefix="/api/v1", tags=["agreement"])


@router.get("/projects/{project_id}/agreement")
def project_agreement(
    project_id: DbId, db: SessionDep, settings: SettingsDep, user: AdminUser
) -> dict[str, Any]:
    """alpha_nominal, alpha_interval, pairwise_agreement, mean_kendall_w, ci95, counts,
    per_labeler (see SPEC §6 for the exact keys; each entry also has ``flagged``: that
    labeler's judgments flagged by the newest suspects run, ``suspects_run_id``), method."""
    project = policy.visible_project(db, user, project_id)
    flagged = suspects.latest_flags_per_labeler(db, settings, project.id)
    return agreement.agreement_report(db, project, flagged)

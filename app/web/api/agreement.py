"""Agreement figures of a project (SPEC §6, §7). Admin only: ``per_labeler`` rates people."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.services import agreement
from app.services.accounts import policy
from app.services.runs import suspects
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import DbId

router = APIRouter(prefix="/api/v1", tags=["agreement"])

Interval = tuple[float, float] | None


class FigureIntervals(BaseModel):
    """95% percentile-bootstrap interval of each figure (null where undefined)."""

    alpha_nominal: Interval
    alpha_interval: Interval
    pairwise_agreement: Interval
    mean_kendall_w: Interval


class AgreementCounts(BaseModel):
    prompts: int
    judgments: int
    units: int
    """(prompt, completion pair) units with at least two judgments."""
    labelers: int


class LabelerFigures(BaseModel):
    """One labeler's row (SPEC §6): null where the figure has no data."""

    labeler: str
    judgments: int
    agreement: float | None
    kappa: dict[str, float | None]
    gold_accuracy: float | None
    position_bias: float | None
    median_seconds: float | None
    flagged: int | None
    """Judgments of this labeler the newest suspects run flagged (null: no such run)."""


class AgreementOut(BaseModel):
    project_id: int
    alpha_nominal: float | None
    alpha_interval: float | None
    pairwise_agreement: float | None
    mean_kendall_w: float | None
    ci95: FigureIntervals
    counts: AgreementCounts
    per_labeler: list[LabelerFigures]
    suspects_run_id: int | None
    """The suspects run ``flagged`` comes from (null: none succeeded in this project)."""
    method: dict[str, str | int]
    """How the figures are computed, in words (units, CI, κ threshold, agreement)."""


@router.get("/projects/{project_id}/agreement")
def project_agreement(
    project_id: DbId, db: SessionDep, settings: SettingsDep, user: AdminUser
) -> AgreementOut:
    """alpha_nominal, alpha_interval, pairwise_agreement, mean_kendall_w, ci95, counts,
    per_labeler (see SPEC §6 for the exact keys; each entry also has ``flagged``: that
    labeler's judgments flagged by the newest suspects run, ``suspects_run_id``), method."""
    project = policy.visible_project(db, user, project_id)
    flagged = suspects.latest_flags_per_labeler(db, settings, project.id)
    return AgreementOut.model_validate(agreement.agreement_report(db, project, flagged))

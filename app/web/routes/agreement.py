"""The agreement dashboard ``/admin/projects/{id}/agreement`` (SPEC §6, §7). Admin only.

One page template with named blocks: htmx asks for the ``disagreements`` block (paging)
and for one prompt's judgments (``prompt_detail``); without JavaScript the same links
load full pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.db.models import Project
from app.domain.figures import FIGURES
from app.domain.pairs import STRATEGIES
from app.services import agreement, exports
from app.services.accounts import policy
from app.services.agreement import prompts as agreement_prompts
from app.services.runs import suspects
from app.settings import Settings
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import DbId, PageNo
from app.web.templating import is_htmx, render

if TYPE_CHECKING:  # a type only: pages reach the database through the services
    from sqlalchemy.orm import Session

router = APIRouter(prefix="/admin/projects/{project_id}", tags=["pages"], include_in_schema=False)

PAGE = "admin/agreement.html"
PROMPT_PAGE = "admin/agreement_prompt.html"
FIGURE_LABELS = {
    "alpha_nominal": "Krippendorff's α (nominal)",
    "alpha_interval": "Krippendorff's α (interval)",
    "pairwise_agreement": "Pairwise agreement",
    "mean_kendall_w": "Mean Kendall's W",
}
DEFAULT_FORM = {
    "strategy": "consensus",
    "min_judgments": "1",
    "min_agreement": "0",
    "ties": "drop",
    "include_gold": False,
    "exclude_labelers": "",
}


def kappa_color(kappa: float | None) -> str:
    """A cell background for a κ: red at 0 or below, through yellow, to green at 1."""
    if kappa is None:
        return "transparent"
    hue = round(120 * min(max(kappa, 0.0), 1.0))
    return f"hsl({hue}, 70%, 82%)"


def kappa_matrix(per_labeler: list[dict[str, Any]]) -> dict[str, Any]:
    """Labelers with at least one κ, and the symmetric matrix of (κ, color) cells."""
    names = [entry["labeler"] for entry in per_labeler if entry["kappa"]]
    kappas = {entry["labeler"]: entry["kappa"] for entry in per_labeler}
    rows = [
        [
            (None, "var(--line)")
            if a == b
            else (kappas[a].get(b), kappa_color(kappas[a].get(b)) if b in kappas[a] else "")
            for b in names
        ]
        for a in names
    ]
    return {"names": names, "rows": rows}


def chart_data(report: dict[str, Any]) -> dict[str, Any]:
    """What static/js/agreement.js draws (embedded as JSON in the page)."""
    figures = []
    for name in FIGURES:
        interval = report["ci95"].get(name) or [None, None]
        figures.append(
            {
                "label": FIGURE_LABELS[name],
                "value": report[name],
                "low": interval[0],
                "high": interval[1],
            }
        )
    labelers = [
        {key: entry[key] for key in ("labeler", "agreement", "gold_accuracy", "position_bias")}
        for entry in report["per_labeler"]
    ]
    return {"figures": figures, "labelers": labelers}


def exports_context(
    session: Session,
    project: Project,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the ``exports`` block needs: the list and the form (with its errors)."""
    return {
        "project": project,
        "exports": exports.list_exports(session, project.id),
        "strategies": STRATEGIES,
        "form": form or dict(DEFAULT_FORM),
        "errors": errors or {},
    }


def page_context(
    session: Session, project: Project, page: int = 1, settings: Settings | None = None
) -> dict[str, Any]:
    """Everything the page shows (with ``settings``, the labelers' flagged judgments)."""
    flagged = suspects.latest_flags_per_labeler(session, settings, project.id) if settings else None
    report = agreement.agreement_report(session, project, flagged)
    return {
        "report": report,
        "labels": FIGURE_LABELS,
        "kappa": kappa_matrix(report["per_labeler"]),
        "chart": chart_data(report),
        "overlap": agreement_prompts.overlap_progress(session, project),
        "disagreements": agreement_prompts.disagreements(session, project.id, page),
        **exports_context(session, project),
    }


@router.get("/agreement")
def agreement_page(
    request: Request,
    project_id: DbId,
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    page: PageNo = 1,
) -> Response:
    project = policy.visible_project(db, user, project_id)
    return render(request, PAGE, {"user": user, **page_context(db, project, page, settings)})


@router.get("/agreement/disagreements")
def disagreement_page(
    request: Request,
    project_id: DbId,
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    page: PageNo = 1,
) -> Response:
    """One page of the disagreement list: the block for htmx, else the whole page."""
    project = policy.visible_project(db, user, project_id)
    if not is_htmx(request):
        return agreement_page(request, project_id, db, settings, user, page)
    listing = agreement_prompts.disagreements(db, project.id, page)
    context = {"project": project, "disagreements": listing}
    return render(request, PAGE, context, block="disagreements")


@router.get("/agreement/prompts/{prompt_id}")
def prompt_judgments(
    request: Request, project_id: DbId, prompt_id: DbId, db: SessionDep, user: AdminUser
) -> Response:
    """All judgments of one prompt side by side (a fragment for htmx, else a page)."""
    project = policy.visible_project(db, user, project_id)
    detail = agreement_prompts.prompt_detail(db, project.id, prompt_id)
    context = {"user": user, "project": project, "detail": detail}
    block = "prompt_detail" if is_htmx(request) else None
    return render(request, PROMPT_PAGE, context, block=block)

"""The labeler page (SPEC §7): `/projects/{id}/label`, and the form posts that record a
judgment or a skip and answer with the next task (an htmx fragment, or a 303 back to the
page for a plain form post)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from app.domain.errors import Expired, Problems, ValidationFailed
from app.services.labeling.checks import JudgmentIn
from app.services.labeling.judgments import skip_assignment, submit_judgment
from app.services.labeling.page import LabelView, label_view
from app.web.deps import CurrentUser, SessionDep
from app.web.forms import FormDep, toast
from app.web.inputs import INT_MAX, DbId, whole_number
from app.web.templating import is_htmx, render

router = APIRouter(tags=["pages"], include_in_schema=False)

FLAG_CHOICES = [
    ("factual_error", "Factual error"),
    ("unsafe", "Unsafe or harmful"),
    ("off_topic", "Off topic"),
    ("incomplete", "Incomplete"),
    ("formatting", "Bad formatting"),
]


def _indexed(form: FormData, prefix: str) -> dict[str, str]:
    """``{"1": value}`` for the fields ``prefix1``, ``prefix2``, ..."""
    return {k.removeprefix(prefix): str(v) for k, v in form.items() if k.startswith(prefix)}


def _ranking(raw: str) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed.single("ranking", "is not valid JSON") from exc


def judgment_from_form(form: FormData) -> JudgmentIn:
    """The page's form fields as a judgment: ``ranking`` (JSON tiers), ``reject_all``,
    ``cid-N`` (the id of completion N), ``axis-A`` (rating axis A), ``rating-N-A`` (1..5),
    ``flag-N`` (repeated), ``rationale``, ``duration_ms``."""
    cids, axes = _indexed(form, "cid-"), _indexed(form, "axis-")
    ratings: dict[str, dict[str, Any]] = {}
    for key, value in _indexed(form, "rating-").items():
        n, _, a = key.partition("-")
        number = whole_number(value, INT_MAX)
        if n in cids and a in axes and number is not None:
            ratings.setdefault(cids[n], {})[axes[a]] = number
    flags = {cids[n]: form.getlist(f"flag-{n}") for n in cids if form.getlist(f"flag-{n}")}
    duration = str(form.get("duration_ms") or "").strip()
    data = {
        "ranking": _ranking(str(form.get("ranking") or "")),
        "reject_all": form.get("reject_all") in ("true", "on"),
        "ratings": ratings or None,
        "flags": flags or None,
        "rationale": str(form.get("rationale") or ""),
        "duration_ms": whole_number(duration, INT_MAX),
    }
    try:
        return JudgmentIn.model_validate(data)
    except ValidationError as exc:
        problems = Problems()
        problems.add_located(exc.errors())
        raise problems.error() from exc


def _context(view: LabelView, user: Any) -> dict[str, Any]:
    return {
        "view": view,
        "user": user,
        "settings": view.project.settings,
        "flag_choices": FLAG_CHOICES,
    }


def _next(
    request: Request, db: SessionDep, user: CurrentUser, project_id: int, notice: str | None = None
) -> Response:
    if not is_htmx(request):
        return RedirectResponse(f"/projects/{project_id}/label", status_code=303)
    headers = toast(notice, "info") if notice else None
    view = label_view(db, user, project_id)
    return render(request, "_task.html", _context(view, user), headers=headers)


def _invalid(request: Request, exc: ValidationFailed) -> Response:
    """Errors listed above the form, leaving the labeler's ranking in place."""
    if not is_htmx(request):
        raise exc
    headers = {"HX-Retarget": "#task-errors", "HX-Reswap": "innerHTML"}
    return render(
        request, "_task_errors.html", {"errors": exc.details}, status_code=422, headers=headers
    )


@router.get("/projects/{project_id}/label")
def label_page(request: Request, project_id: DbId, db: SessionDep, user: CurrentUser) -> Response:
    view = label_view(db, user, project_id)
    return render(request, "label.html", _context(view, user))


@router.post("/projects/{project_id}/label/{assignment_id}")
def label_submit(
    request: Request,
    project_id: DbId,
    assignment_id: DbId,
    db: SessionDep,
    user: CurrentUser,
    form: FormDep,
) -> Response:
    try:
        submit_judgment(db, user, assignment_id, judgment_from_form(form))
    except ValidationFailed as exc:
        return _invalid(request, exc)
    except Expired as exc:
        return _next(request, db, user, project_id, exc.message + ". Here is a new task.")
    return _next(request, db, user, project_id)


@router.post("/projects/{project_id}/label/{assignment_id}/skip")
def label_skip(
    request: Request, project_id: DbId, assignment_id: DbId, db: SessionDep, user: CurrentUser
) -> Response:
    skip_assignment(db, user, assignment_id)
    return _next(request, db, user, project_id)

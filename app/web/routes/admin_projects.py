"""Admin pages of a project (SPEC §7 ``/admin/projects/{id}``): create, settings,
status, members, import and progress. Admin only (a labeler gets 403).

Every form works without JavaScript (POST, then a 303 back to the page, or the page
again with the errors at 422); with htmx, each POST answers with its own fragment
(422 fragments are swapped in place, see static/js/app.js).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from app.db.models import Project, User
from app.db.models.projects import ALLOWED_TRANSITIONS, ProjectStatus
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.importing.formats import DEFAULT_PAIRS_LABELER
from app.services import importing, projects
from app.services.accounts import policy
from app.services.labeling.progress import project_progress
from app.services.project_settings import ProjectSettings
from app.web.api.imports import UploadDep
from app.web.deps import AdminUser, SessionDep
from app.web.forms import FormDep, field_errors, toast
from app.web.inputs import DbId
from app.web.templating import is_htmx, render

if TYPE_CHECKING:  # a type only: pages reach the database through the services
    from sqlalchemy.orm import Session

router = APIRouter(tags=["pages"], include_in_schema=False)

PAGE = "admin/project.html"
NEW_PAGE = "admin/new_project.html"
PREVIEW_URL = "/admin/projects/preview"
CHECKBOXES = ("allow_ties", "allow_reject_all", "require_rationale", "show_flags", "adaptive")
FIELDS = (
    "adaptive_max_labels", "adaptive_min_agreement", "adaptive", "labels_per_prompt",
    "lease_minutes", "gold_rate", "rating_axes", "guidelines", "render", "name", "description",
    *CHECKBOXES,
)  # fmt: skip
STATUS_HELP = {
    "draft": "Draft: being set up; labelers get no tasks yet.",
    "active": "Active: members get tasks.",
    "paused": "Paused: closed to labelers for now; nothing is lost.",
    "archived": "Archived: read-only and hidden from the project list.",
}
STATUS_VERBS = {"active": "Activate", "paused": "Pause", "archived": "Archive"}


def form_values(project: Project | None) -> dict[str, Any]:
    """The form's values for a project (or the defaults for a new one)."""
    settings = projects.settings_of(project) if project else ProjectSettings()
    adaptive = settings.adaptive
    return {
        **settings.model_dump(exclude={"adaptive", "rating_axes"}),
        "name": project.name if project else "",
        "description": project.description if project else "",
        "rating_axes": ", ".join(settings.rating_axes),
        "adaptive": adaptive is not None,
        "adaptive_max_labels": adaptive.max_labels if adaptive else settings.labels_per_prompt,
        "adaptive_min_agreement": adaptive.min_agreement if adaptive else 0.7,
    }


def _submitted(form: FormData) -> dict[str, Any]:
    """The form as submitted (strings; checkboxes as booleans), to show it back."""
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    values.update({name: name in form for name in CHECKBOXES})
    return values


def _settings_of(values: dict[str, Any]) -> dict[str, Any]:
    """Form values as ProjectSettings input; pydantic does the checking and converting."""
    settings = {
        name: values.get(name, "")
        for name in ("labels_per_prompt", "lease_minutes", "gold_rate", "guidelines", "render")
    }
    settings.update({name: values[name] for name in CHECKBOXES if name != "adaptive"})
    settings["rating_axes"] = [a.strip() for a in values.get("rating_axes", "").split(",")]
    settings["rating_axes"] = [a for a in settings["rating_axes"] if a]
    settings["adaptive"] = (
        {
            "max_labels": values.get("adaptive_max_labels", ""),
            "min_agreement": values.get("adaptive_min_agreement", ""),
        }
        if values["adaptive"]
        else None
    )
    return settings


def _field_of(detail_field: str) -> str:
    """The form field a settings error belongs to (``settings.adaptive.max_labels`` →
    ``adaptive_max_labels``); ``form`` when it belongs to none."""
    key = detail_field.removeprefix("settings.").replace(".", "_")
    return next((f for f in FIELDS if key == f or key.startswith(f + "_")), "form")


def _errors(exc: ValidationFailed) -> dict[str, str]:
    """The service's problems next to the form's fields."""
    return field_errors(exc.details, exc.message, _field_of)


def _verb(current: str, target: str) -> str:
    if target == ProjectStatus.paused.value and current == ProjectStatus.archived.value:
        return "Unarchive (paused)"
    return STATUS_VERBS[target]


def _form_ctx(values: dict[str, Any], errors: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"values": values, "errors": errors, "preview_url": PREVIEW_URL, **extra}


def _page(
    request: Request, db: Session, user: User, project: Project, status_code: int = 200, **extra
) -> Response:
    """The whole project page; ``extra`` overrides parts of its context."""
    allowed = ALLOWED_TRANSITIONS[ProjectStatus(project.status)]
    transitions = [s.value for s in ProjectStatus if s in allowed]
    ctx = {
        "user": user,
        "project": project,
        **_form_ctx(form_values(project), {}),
        "transitions": [(t, _verb(project.status, t)) for t in transitions],
        "status_help": STATUS_HELP[project.status],
        "members": projects.members(db, project),
        "progress": project_progress(db, user, project.id),
        "import_result": None,
        **extra,
    }
    return render(request, PAGE, ctx, status_code=status_code)


def _back(project_id: int) -> RedirectResponse:
    return RedirectResponse(f"/admin/projects/{project_id}", status_code=303)


@router.get("/admin/projects/new")
def new_project_page(request: Request, user: AdminUser) -> Response:
    ctx = {"user": user, **_form_ctx({**form_values(None), "status": "draft"}, {})}
    return render(request, NEW_PAGE, ctx)


@router.post("/admin/projects")
def create_project(request: Request, db: SessionDep, user: AdminUser, form: FormDep) -> Response:
    """Create from the form: 303 to the new project's page, or the form again at 422."""
    values = _submitted(form)
    try:
        project = projects.create_project(
            db,
            values["name"],
            _settings_of(values),
            description=values.get("description", ""),
            status=values.get("status", ProjectStatus.draft.value),
        )
        return _back(project.id)
    except ValidationFailed as exc:
        errors = _errors(exc)
    except Conflict as exc:
        errors = {"name": exc.message}
    ctx = {"user": user, **_form_ctx(values, errors)}
    return render(request, NEW_PAGE, ctx, status_code=422)


@router.post(PREVIEW_URL)
def preview_guidelines(
    request: Request, _: AdminUser, guidelines: Annotated[str, Form(max_length=100_000)] = ""
) -> Response:
    """The guidelines rendered as labelers will see them (sanitized Markdown)."""
    return render(request, "admin/project_preview.html", {"guidelines": guidelines})


@router.get("/admin/projects/{project_id}")
def project_page(request: Request, project_id: DbId, db: SessionDep, user: AdminUser) -> Response:
    return _page(request, db, user, policy.visible_project(db, user, project_id))


@router.get("/admin/projects/{project_id}/progress")
def progress_fragment(
    request: Request, project_id: DbId, db: SessionDep, user: AdminUser
) -> Response:
    """The progress block, polled by the page every 10 s."""
    project = policy.visible_project(db, user, project_id)
    ctx = {"project": project, "progress": project_progress(db, user, project_id)}
    return render(request, PAGE, ctx, block="progress")


@router.post("/admin/projects/{project_id}/settings")
def save_settings(
    request: Request, project_id: DbId, db: SessionDep, user: AdminUser, form: FormDep
) -> Response:
    """Save every setting at once; errors are shown next to their fields (422)."""
    project = policy.visible_project(db, user, project_id)
    values = _submitted(form)
    errors: dict[str, str] = {}
    try:
        projects.update_project(
            db,
            project,
            name=values["name"],
            description=values.get("description", ""),
            settings=_settings_of(values),
        )
    except ValidationFailed as exc:
        errors = _errors(exc)
    except Conflict as exc:
        errors = {"name": exc.message}
    if not is_htmx(request):
        return (
            _page(request, db, user, project, 422, **_form_ctx(values, errors))
            if errors
            else _back(project_id)
        )
    if errors:
        ctx = {"project": project, **_form_ctx(values, errors)}
        return render(request, PAGE, ctx, block="settings_form", status_code=422)
    ctx = {"project": project, **_form_ctx(form_values(project), {}, saved=True)}
    return render(request, PAGE, ctx, block="settings_form", headers=toast("Settings saved."))


@router.post("/admin/projects/{project_id}/status")
def change_status(
    project_id: DbId, db: SessionDep, user: AdminUser, status: Annotated[str, Form(max_length=16)]
) -> Response:
    """Move the project along its lifecycle (other moves are refused with 409)."""
    projects.set_status(db, policy.visible_project(db, user, project_id), status)
    return _back(project_id)


def _members_answer(
    request: Request, db: Session, user: User, project: Project, error: str | None, username: str
) -> Response:
    status = 422 if error else 200
    if not is_htmx(request):
        if error is None:
            return _back(project.id)
        return _page(
            request, db, user, project, status, member_error=error, member_username=username
        )
    ctx = {
        "project": project,
        "members": projects.members(db, project),
        "member_error": error,
        "member_username": username if error else "",
    }
    return render(request, PAGE, ctx, block="members", status_code=status)


@router.post("/admin/projects/{project_id}/members")
def add_member(
    request: Request,
    project_id: DbId,
    db: SessionDep,
    user: AdminUser,
    username: Annotated[str, Form(max_length=150)],
) -> Response:
    project = policy.visible_project(db, user, project_id)
    try:
        projects.add_member(db, project, username.strip())
    except NotFound as exc:
        return _members_answer(request, db, user, project, exc.message, username)
    return _members_answer(request, db, user, project, None, username)


@router.post("/admin/projects/{project_id}/members/remove")
def remove_member(
    request: Request,
    project_id: DbId,
    db: SessionDep,
    user: AdminUser,
    username: Annotated[str, Form(max_length=150)],
) -> Response:
    project = policy.visible_project(db, user, project_id)
    try:
        projects.remove_member(db, project, username)
    except NotFound as exc:
        return _members_answer(request, db, user, project, exc.message, username)
    return _members_answer(request, db, user, project, None, username)


@router.post("/admin/projects/{project_id}/import")
def import_file(
    request: Request, project_id: DbId, db: SessionDep, user: AdminUser, upload: UploadDep
) -> Response:
    """Import an uploaded file; the outcome (counts, or every error with its line and
    field at 422) replaces #import-result, or comes back in the page without htmx."""
    project = policy.visible_project(db, user, project_id)
    labeler = upload.form.get("labeler") or DEFAULT_PAIRS_LABELER
    try:
        result = importing.import_file(
            db, project, upload.file, upload.format(None), labeler=labeler
        )
    except ValidationFailed as exc:
        outcome: dict[str, Any] = {"message": exc.message, "details": exc.details}
        status, headers = 422, None
    else:
        outcome = {"imported": result.imported, "skipped": result.skipped}
        message = f"Imported {result.imported}, skipped {result.skipped}."
        status, headers = 200, toast(message, events={"prefloop:imported": {}})
    if not is_htmx(request):
        return _page(request, db, user, project, status, import_result=outcome)
    return render(
        request,
        PAGE,
        {"import_result": outcome},
        block="import_result",
        status_code=status,
        headers=headers,
    )

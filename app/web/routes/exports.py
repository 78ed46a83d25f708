"""The export form of the agreement dashboard: ``POST /admin/projects/{id}/exports``.

One POST serves both clients: htmx gets the ``exports`` block again (the new export on
top, or the form with its errors at 422) plus a toast; a plain form gets a 303 back to
the dashboard, or the whole page with the errors at 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from app.domain.errors import ValidationFailed
from app.services import exports
from app.services.accounts import policy
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.forms import FormDep, field_errors, toast
from app.web.inputs import DbId
from app.web.routes.agreement import DEFAULT_FORM, PAGE, exports_context, page_context
from app.web.templating import is_htmx, render

router = APIRouter(prefix="/admin/projects/{project_id}", tags=["pages"], include_in_schema=False)


def submitted(form: FormData) -> dict[str, Any]:
    """The form as typed (to show it back), checkbox as a boolean."""
    values: dict[str, Any] = {
        key: str(form.get(key, default)) for key, default in DEFAULT_FORM.items()
    }
    values["include_gold"] = "include_gold" in form
    return values


def _number(text: str, kind: type) -> Any:
    """The number typed, or the text itself so that the filter check names the field."""
    try:
        return kind(text.strip())
    except ValueError:
        return text


def filters_of(values: dict[str, Any]) -> dict[str, Any]:
    """Form values as the filters object of SPEC §4 (checked by the export service)."""
    excluded = values["exclude_labelers"].replace(",", " ").split()
    return {
        "min_judgments": _number(values["min_judgments"], int),
        "min_agreement": _number(values["min_agreement"], float),
        "ties": values["ties"],
        "include_gold": values["include_gold"],
        "exclude_labelers": excluded,
    }


def _errors(exc: ValidationFailed) -> dict[str, str]:
    """Error messages by form field (``filters.ties`` -> ``ties``)."""
    return field_errors(exc.details, exc.message, lambda field: field.removeprefix("filters."))


@router.post("/exports")
def create_export(
    request: Request,
    project_id: DbId,
    form: FormDep,
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
) -> Response:
    project = policy.visible_project(db, user, project_id)
    values = submitted(form)
    try:
        export = exports.create_export(
            db, settings, project, values["strategy"], filters_of(values), created_by=user
        )
    except ValidationFailed as exc:
        errors = _errors(exc)
        if is_htmx(request):
            context = exports_context(db, project, values, errors)
            return render(request, PAGE, context, block="exports", status_code=422)
        context = {
            **page_context(db, project, settings=settings),
            **exports_context(db, project, values, _errors(exc)),
        }
        return render(request, PAGE, {"user": user, **context}, status_code=422)
    if not is_htmx(request):
        return RedirectResponse(f"/admin/projects/{project_id}/agreement#exports", 303)
    counts = export.manifest["counts"]
    message = (
        f"Export {export.id} created: {counts['pairs']} pairs from {counts['prompts']} prompts"
    )
    context = exports_context(db, project)
    return render(request, PAGE, context, block="exports", headers=toast(message))

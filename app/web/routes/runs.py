"""Dashboard pages of training runs: the queue and a start form, one run live, and the
comparison of a labeled next round (admin only)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.db.models import TrainingRun
from app.domain.errors import ValidationFailed
from app.services.runs import next_round, plan, view
from app.services.runs import queue as runs
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import BIGINT_MAX, DbId, whole_number
from app.web.templating import is_htmx, render
from training.config import PRESETS
from training.schema import RunKind, RunStatus

router = APIRouter(tags=["pages"], include_in_schema=False)
KIND_HELP = {
    RunKind.reward: "Reward model (Bradley–Terry) on an export.",
    RunKind.dpo: "DPO on an export; the reference is the base with the adapter off.",
    RunKind.ppo: "PPO on an export's prompts, scored by a finished reward-model run.",
    RunKind.generate: "Sample from a finished DPO/PPO run and its base into a new labeling "
    "project.",
    RunKind.suspects: "Likely mislabels: reward models trained out of fold score every "
    "labeler's pairs of an export with strategy 'all'.",
}


def _choices(db: SessionDep) -> dict[str, Any]:
    """What the start form offers (exports, parent runs, projects, presets, kinds)."""
    return {
        **view.form_choices(db),
        "presets": sorted(PRESETS),
        "kinds": {kind.value: KIND_HELP[kind] for kind in RunKind},
    }


def _list_context(db: SessionDep, user: Any) -> dict[str, Any]:
    listed = runs.list_runs(db)
    return {
        "user": user,
        "runs": listed,
        "durations": {r.id: r.duration_seconds for r in listed},
    }


@router.get("/admin/runs")
def runs_page(
    request: Request, db: SessionDep, user: AdminUser, fragment: str | None = None
) -> Response:
    """The run list (polled every 2 s as a fragment) and the start form."""
    ctx = _list_context(db, user)
    if fragment == "table":
        return render(request, "admin/runs.html", ctx, block="runs_table")
    query = request.query_params  # links (other pages, the demo) preselect the form's fields
    form = {
        "kind": query.get("kind", RunKind.reward.value),
        "export_id": query.get("export_id", ""),
        "parent_run_id": query.get("parent_run_id", ""),
        "base_model": query.get("base_model", ""),
        "preset": query.get("preset", ""),
    }
    return render(request, "admin/runs.html", {**ctx, **_choices(db), "form": form, "errors": []})


def _optional_int(value: str, field: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    number = whole_number(value)
    if not number:
        raise ValidationFailed.single(field, f"must be a whole number from 1 to {BIGINT_MAX}")
    return number


def _request_from_form(form: dict[str, str]) -> runs.RunRequest:
    try:
        config = json.loads(form["config"] or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationFailed.single(
            "config", f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise ValidationFailed.single("config", "is nested too deeply") from exc
    return runs.RunRequest(
        kind=form["kind"],
        base_model=form["base_model"],
        config=config,
        export_id=_optional_int(form["export_id"], "export_id"),
        parent_run_id=_optional_int(form["parent_run_id"], "parent_run_id"),
        project_id=_optional_int(form["project_id"], "project_id"),
        preset=form["preset"] or None,
    )


@router.post("/admin/runs")
def start_run(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    kind: Annotated[str, Form()],
    base_model: Annotated[str, Form()] = "",
    export_id: Annotated[str, Form()] = "",
    parent_run_id: Annotated[str, Form()] = "",
    project_id: Annotated[str, Form()] = "",
    preset: Annotated[str, Form()] = "",
    config: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Queue a run from the form: 303 to its page (htmx: HX-Redirect), or the form again
    with every problem listed (422)."""
    form = {
        "kind": kind,
        "base_model": base_model,
        "export_id": export_id,
        "parent_run_id": parent_run_id,
        "project_id": project_id,
        "preset": preset,
        "config": config,
    }
    try:
        run = runs.create_run(db, settings, _request_from_form(form))
    except ValidationFailed as exc:
        ctx = {**_list_context(db, user), **_choices(db), "form": form, "errors": exc.details}
        block = "run_form" if is_htmx(request) else None
        return render(request, "admin/runs.html", ctx, block=block, status_code=422)
    target = f"/admin/runs/{run.id}"
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.post("/admin/runs/plan")
def plan_preview(
    request: Request,
    db: SessionDep,
    _: AdminUser,
    kind: Annotated[str, Form()] = "",
    base_model: Annotated[str, Form()] = "",
    preset: Annotated[str, Form()] = "",
    config: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """The start form's memory plan, as the admin types (an htmx fragment)."""
    try:
        overrides = json.loads(config or "{}")
    except (json.JSONDecodeError, RecursionError):
        overrides = None
    if not isinstance(overrides, dict):
        ctx = {"plan": None, "problem": "config: not a JSON object yet (no memory plan)"}
    else:
        found, problem = plan.preview(db, kind, base_model, preset, overrides)
        ctx = {"plan": found, "problem": problem}
    return render(request, "admin/_memory_plan.html", ctx)


def _run_context(db: SessionDep, settings: Any, run: TrainingRun) -> dict[str, Any]:
    return {
        "run": run,
        "duration": run.duration_seconds,
        "files": view.artifacts(settings, run),
        "samples": view.recent_samples(db, run.id),
        "final": view.is_final(run),
    }


@router.get("/admin/runs/{run_id}")
def run_page(
    request: Request,
    run_id: DbId,
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    fragment: str | None = None,
) -> Response:
    """One run: live charts (static/js/runs.js polls the API), and a status/log/samples/
    artifacts fragment that htmx polls every 2 s until the run is final."""
    run = runs.get_run(db, run_id)
    ctx = {"user": user, **_run_context(db, settings, run)}
    if fragment == "live":
        return render(request, "admin/runs_detail.html", ctx, block="live")
    ctx["ceiling"] = view.human_ceiling(db, settings, run)
    ctx["parent"] = view.parent_run(db, run)
    return render(request, "admin/runs_detail.html", ctx)


def _after_action(
    request: Request, db: SessionDep, settings: Any, user: Any, run: TrainingRun
) -> Response:
    """htmx: the live fragment again (a retried run reloads the page: its curves restart);
    a plain form: back to the run page."""
    if is_htmx(request) and run.status == RunStatus.queued:
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    if is_htmx(request):
        ctx = {"user": user, **_run_context(db, settings, run)}
        return render(request, "admin/runs_detail.html", ctx, block="live")
    return RedirectResponse(f"/admin/runs/{run.id}", status_code=303)


@router.post("/admin/runs/{run_id}/cancel")
def cancel(
    request: Request, run_id: DbId, db: SessionDep, settings: SettingsDep, user: AdminUser
) -> Response:
    return _after_action(request, db, settings, user, runs.cancel_run(db, run_id))


@router.post("/admin/runs/{run_id}/retry")
def retry(
    request: Request, run_id: DbId, db: SessionDep, settings: SettingsDep, user: AdminUser
) -> Response:
    return _after_action(request, db, settings, user, runs.retry_run(db, run_id))


@router.get("/admin/projects/{project_id}/compare")
def compare_page(request: Request, project_id: DbId, db: SessionDep, user: AdminUser) -> Response:
    """The trained policy against its base on a labeled next round."""
    page = next_round.comparison_page(db, project_id)
    return render(request, "admin/compare.html", {"user": user, **page})

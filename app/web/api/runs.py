"""Training runs (SPEC §7, §10): queue, inspect, cancel, retry, download artifacts. Admin only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from app.db.models import TrainingRun
from app.services.runs import next_round, view
from app.services.runs import queue as runs
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import DbId, Int32
from app.web.openapi import documented_as
from training.config import CONFIG_CLASSES
from training.schema import BASE_MODEL_CHARS, RunKind

KindChoice = Literal[tuple(kind.value for kind in RunKind)]  # the enum's values, as a Literal

router = APIRouter(prefix="/api/v1/training-runs", tags=["training runs"])


class NewRun(BaseModel):
    kind: KindChoice
    export_id: DbId | None = None
    base_model: str = Field(default="", max_length=BASE_MODEL_CHARS)
    config: Annotated[
        dict[str, Any],
        documented_as(
            *(cls.__name__ for cls in CONFIG_CLASSES.values()),
            description="Fields of the kind's config class, over its defaults and the preset.",
        ),
    ] = Field(default_factory=dict)
    parent_run_id: DbId | None = None
    preset: str | None = None
    project_id: DbId | None = Field(
        default=None,
        description="generate: the prompt set, when it is a project rather than an export",
    )


class RunOut(BaseModel):
    # a run's row as the API shows it, read from the ORM object (no docstring: the OpenAPI
    # schema stays as it was)
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    base_model: str
    export_id: int | None
    parent_run_id: int | None
    project_id: int | None
    result_project_id: int | None
    config: dict[str, Any]
    worker: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    error: str | None
    artifact_uri: str | None

    @classmethod
    def of(cls, run: TrainingRun) -> RunOut:
        return cls.model_validate(run)


class MetricOut(BaseModel):
    step: int
    values: dict[str, float | None]
    samples: list[Any] | None


class FileOut(BaseModel):
    path: str
    size: int
    url: str


class RunDetail(RunOut):
    metrics: list[MetricOut]
    log_tail: str
    files: list[FileOut]


def _detail(
    run: TrainingRun, db: SessionDep, settings: SettingsDep, after_step: int | None
) -> RunDetail:
    files = [
        FileOut(**f, url=f"/api/v1/training-runs/{run.id}/files/{f['path']}")
        for f in view.artifacts(settings, run)
    ]
    return RunDetail(
        **RunOut.of(run).model_dump(),
        log_tail=run.log_tail,
        files=files,
        metrics=view.metrics(db, run.id, after_step),
    )


class MemoryPlanOut(BaseModel):
    """Peak GPU memory of one process (GB), by part, and where the run fits."""

    per_device_gb: float
    required_gb: float
    processes: int
    distributed: str
    parts_gb: dict[str, float]
    fits: bool | None = Field(description="null: no GPU worker is registered")
    fits_on: list[str]
    suggestion: str | None


class CreatedRun(RunOut):
    memory_plan: MemoryPlanOut | None = Field(
        description="null when the base model's config.json cannot be read"
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CreatedRun)
def create_run(body: NewRun, db: SessionDep, settings: SettingsDep, _: AdminUser) -> CreatedRun:
    """Queue a run; 422 names the figure when its memory plan fits no registered GPU
    worker."""
    run = runs.create_run(db, settings, runs.RunRequest(**body.model_dump()))
    return CreatedRun(**RunOut.of(run).model_dump(), memory_plan=run.memory_plan)


@router.get("", response_model=list[RunOut])
def list_runs(
    db: SessionDep,
    _: AdminUser,
    kind: str | None = None,
    state: Annotated[str | None, Query(alias="status")] = None,
) -> list[RunOut]:
    """Runs, newest first; ``?kind=`` and ``?status=`` filter."""
    return [RunOut.of(r) for r in runs.list_runs(db, kind=kind, status=state)]


@router.get("/{run_id}", response_model=RunDetail)
def get_run(
    run_id: DbId,
    db: SessionDep,
    settings: SettingsDep,
    _: AdminUser,
    after_step: Int32 | None = None,
) -> RunDetail:
    """Status, timings, attempts, metrics by step (only after ``after_step`` when given, for
    polling), the log tail and the artifact files."""
    return _detail(runs.get_run(db, run_id), db, settings, after_step)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut)
def cancel_run(run_id: DbId, db: SessionDep, _: AdminUser) -> RunOut:
    return RunOut.of(runs.cancel_run(db, run_id))


@router.post("/{run_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut)
def retry_run(run_id: DbId, db: SessionDep, _: AdminUser) -> RunOut:
    return RunOut.of(runs.retry_run(db, run_id))


@router.get("/{run_id}/files/{path:path}")
def download(
    run_id: DbId, path: str, db: SessionDep, settings: SettingsDep, _: AdminUser
) -> FileResponse:
    target = view.artifact_file(settings, runs.get_run(db, run_id), path)
    return FileResponse(target, filename=target.name)


@router.get("/{run_id}/comparison")
def comparison(run_id: DbId, db: SessionDep, _: AdminUser) -> dict[str, Any]:
    """A generate run's labeled round: the trained policy against its base (win rate,
    Bradley–Terry scores, bootstrap 95% intervals)."""
    return next_round.comparison_for_run(db, runs.get_run(db, run_id))

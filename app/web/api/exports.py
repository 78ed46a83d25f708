"""Exports (SPEC §5, §7): create a snapshot, list them, download the two files. Admin only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, computed_field

from app.domain.pairs import CONSENSUS, STRATEGIES
from app.services import exports
from app.services.accounts import policy
from app.services.exports import MANIFEST_FILE, PAIRS_FILE
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import DbId
from app.web.openapi import documented_as, one_of

router = APIRouter(prefix="/api/v1", tags=["exports"])


class NewExport(BaseModel):
    """``strategy``: consensus | all | best_vs_rest | best_vs_worst. ``filters``: SPEC §4."""

    model_config = ConfigDict(extra="forbid")
    strategy: Annotated[str, one_of(STRATEGIES)] = CONSENSUS
    filters: Annotated[dict[str, Any] | None, documented_as("ExportFilters", nullable=True)] = None


class ExportOut(BaseModel):
    """An export as the API shows it, read from the ORM row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    strategy: str
    filters: dict[str, Any]
    created_at: datetime
    manifest: dict[str, Any]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def files(self) -> dict[str, str]:
        """Where to download each file of the export."""
        return {name: f"/api/v1/exports/{self.id}/{name}" for name in exports.EXPORT_FILES}


@router.post(
    "/projects/{project_id}/exports", status_code=status.HTTP_201_CREATED, response_model=ExportOut
)
def create_export(
    project_id: DbId, body: NewExport, db: SessionDep, settings: SettingsDep, user: AdminUser
) -> ExportOut:
    project = policy.visible_project(db, user, project_id)
    export = exports.create_export(
        db, settings, project, body.strategy, body.filters, created_by=user
    )
    return ExportOut.model_validate(export)


@router.get("/projects/{project_id}/exports", response_model=list[ExportOut])
def list_exports(project_id: DbId, db: SessionDep, user: AdminUser) -> list[ExportOut]:
    policy.visible_project(db, user, project_id)
    return [ExportOut.model_validate(e) for e in exports.list_exports(db, project_id)]


@router.get("/exports/{export_id}", response_model=ExportOut)
def get_export(export_id: DbId, db: SessionDep, _: AdminUser) -> ExportOut:
    return ExportOut.model_validate(exports.get_export(db, export_id))


@router.get(
    "/exports/{export_id}/pairs.jsonl",
    response_class=FileResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One pair a line."}},
)
def download_pairs(export_id: DbId, db: SessionDep, _: AdminUser) -> FileResponse:
    path = exports.export_file(exports.get_export(db, export_id), PAIRS_FILE)
    return FileResponse(
        path, media_type="application/x-ndjson", filename=f"export-{export_id}-{PAIRS_FILE}"
    )


@router.get(
    "/exports/{export_id}/manifest.json",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "The manifest (SPEC §5).",
        }
    },
)
def download_manifest(export_id: DbId, db: SessionDep, _: AdminUser) -> FileResponse:
    path = exports.export_file(exports.get_export(db, export_id), MANIFEST_FILE)
    return FileResponse(
        path, media_type="application/json", filename=f"export-{export_id}-{MANIFEST_FILE}"
    )

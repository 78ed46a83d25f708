"""Projects and members (SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.domain.names import trimmed_pattern
from app.services import projects
from app.services.accounts import policy
from app.services.project_settings import ProjectSettings
from app.services.projects import MAX_DESCRIPTION, MAX_NAME, PROJECT_STATUSES
from app.web.deps import AdminUser, CurrentUser, SessionDep
from app.web.inputs import DbId
from app.web.openapi import documented, documented_as, one_of

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


NAME = {"type": "string", "pattern": trimmed_pattern(MAX_NAME)}
DESCRIPTION = {"type": "string", "maxLength": MAX_DESCRIPTION}
SETTINGS = "The labeling settings to set (SPEC §2); the others keep their value or default."


class NewProject(BaseModel):
    name: Annotated[str, documented(NAME)]
    description: Annotated[str, documented(DESCRIPTION)] = ""
    status: Annotated[str, one_of(PROJECT_STATUSES)] = "active"
    settings: Annotated[dict[str, Any], documented_as("ProjectSettings", description=SETTINGS)] = (
        Field(default_factory=dict)
    )


class ProjectPatch(BaseModel):
    name: Annotated[str | None, documented(NAME, nullable=True)] = None
    description: Annotated[str | None, documented(DESCRIPTION, nullable=True)] = None
    status: Annotated[str | None, one_of(PROJECT_STATUSES, nullable=True)] = None
    settings: Annotated[
        dict[str, Any] | None,
        documented_as("ProjectSettings", nullable=True, description=SETTINGS),
    ] = None


class ProjectOut(BaseModel):
    """A project as the API shows it, read from the ORM row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    status: str
    settings: dict[str, Any]
    """Every setting in effect: the stored ones, and the defaults of those never set (a
    project saved before a setting existed shows that setting's default)."""
    created_at: datetime

    @field_validator("settings")
    @classmethod
    def _in_effect(cls, stored: dict[str, Any]) -> dict[str, Any]:
        return {**ProjectSettings().model_dump(), **stored}


class Member(BaseModel):
    username: str = Field(max_length=150)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectOut)
def create_project(body: NewProject, db: SessionDep, _: AdminUser) -> ProjectOut:
    project = projects.create_project(
        db, body.name, body.settings, description=body.description, status=body.status, strict=True
    )
    return ProjectOut.model_validate(project)


@router.get("", response_model=list[ProjectOut])
def list_projects(db: SessionDep, user: CurrentUser, include_archived: bool = False):
    return [
        ProjectOut.model_validate(p)
        for p in projects.list_projects(db, user, include_archived=include_archived)
    ]


@router.get("/{project_id}", response_model=ProjectOut)
def get_project(project_id: DbId, db: SessionDep, user: CurrentUser) -> ProjectOut:
    return ProjectOut.model_validate(policy.visible_project(db, user, project_id))


@router.patch("/{project_id}", response_model=ProjectOut)
def update_project(project_id: DbId, body: ProjectPatch, db: SessionDep, user: AdminUser):
    project = policy.visible_project(db, user, project_id)
    projects.update_project(
        db,
        project,
        name=body.name,
        description=body.description,
        settings=body.settings,
        status=body.status,
        strict=True,
    )
    return ProjectOut.model_validate(project)


@router.post("/{project_id}/members", status_code=status.HTTP_204_NO_CONTENT)
def add_member(project_id: DbId, body: Member, db: SessionDep, user: AdminUser) -> None:
    projects.add_member(db, policy.visible_project(db, user, project_id), body.username)


@router.delete("/{project_id}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(project_id: DbId, username: str, db: SessionDep, user: AdminUser) -> None:
    projects.remove_member(db, policy.visible_project(db, user, project_id), username)

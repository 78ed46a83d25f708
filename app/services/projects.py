"""Projects: create, edit settings, change status, members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Project, ProjectMember, User
from app.db.models.projects import ALLOWED_TRANSITIONS, ProjectStatus
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.services.policy import is_admin
from app.services.project_settings import ProjectSettings, parse_settings


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 200:
        raise ValidationFailed.single("name", "a project name has 1 to 200 characters")
    return name


def create_project(
    session: Session,
    name: str,
    settings: dict[str, Any] | None = None,
    *,
    description: str = "",
    status: str = ProjectStatus.active.value,
) -> Project:
    if status not in {s.value for s in ProjectStatus}:
        raise ValidationFailed.single("status", "one of draft, active, paused, archived")
    project = Project(
        name=_check_name(name),
        description=description or "",
        status=status,
        settings=parse_settings(settings).model_dump(),
    )
    session.add(project)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a project named {name!r} already exists") from exc
    return project


def project_settings(project: Project) -> ProjectSettings:
    return ProjectSettings.model_validate(project.settings)


def update_project(
    session: Session,
    project: Project,
    *,
    name: str | None = None,
    description: str | None = None,
    settings: dict[str, Any] | None = None,
    status: str | None = None,
) -> Project:
    """Change name, description, some settings (merged over the current ones) and the
    status, in one transaction: everything is checked before anything changes."""
    target = _target_status(project, status) if status is not None else None
    new_settings = (
        parse_settings(settings, base=project.settings).model_dump()
        if settings is not None
        else None
    )
    if name is not None:
        project.name = _check_name(name)
    if description is not None:
        project.description = description
    if new_settings is not None:
        project.settings = new_settings
    if target is not None:
        project.status = target.value
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a project named {name!r} already exists") from exc
    return project


def _target_status(project: Project, status: str) -> ProjectStatus:
    """The status to move to, if the lifecycle of ``ProjectStatus`` allows it."""
    try:
        target = ProjectStatus(status)
    except ValueError as exc:
        raise ValidationFailed.single("status", "one of draft, active, paused, archived") from exc
    current = ProjectStatus(project.status)
    if target != current and target not in ALLOWED_TRANSITIONS[current]:
        raise Conflict(f"a {current.value} project cannot become {target.value}")
    return target


def set_status(session: Session, project: Project, status: str) -> Project:
    """Move along the lifecycle of ``ProjectStatus``; other moves are refused."""
    project.status = _target_status(project, status).value
    session.commit()
    return project


def list_projects(session: Session, user: User, *, include_archived: bool = False) -> list[Project]:
    stmt = select(Project).order_by(Project.id)
    if not is_admin(user):
        stmt = stmt.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == user.id
        )
    if not include_archived:
        stmt = stmt.where(Project.status != ProjectStatus.archived.value)
    return list(session.scalars(stmt))


def add_member(session: Session, project: Project, username: str) -> None:
    """Make a user a member (idempotent)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.is_external:
        raise NotFound(f"no user named {username!r}")
    session.execute(
        insert(ProjectMember)
        .values(project_id=project.id, user_id=user.id)
        .on_conflict_do_nothing()
    )
    session.commit()


def remove_member(session: Session, project: Project, username: str) -> None:
    member = session.scalar(
        select(ProjectMember)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project.id, User.username == username)
    )
    if member is None:
        raise NotFound(f"{username!r} is not a member of this project")
    session.delete(member)
    session.commit()


def members(session: Session, project: Project) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(ProjectMember, ProjectMember.user_id == User.id)
            .where(ProjectMember.project_id == project.id)
            .order_by(User.username)
        )
    )

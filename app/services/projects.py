"""Projects: create, edit settings, change status, members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Project, ProjectMember, User
from app.db.models.projects import ALLOWED_TRANSITIONS, ProjectStatus
from app.domain.errors import Conflict, NotFound, Problems, ValidationFailed
from app.services.accounts.policy import is_admin
from app.services.project_settings import ProjectSettings, parse_settings

MAX_NAME = 200
MAX_DESCRIPTION = 10_000
PROJECT_STATUSES = tuple(s.value for s in ProjectStatus)
STATUSES = f"one of {', '.join(PROJECT_STATUSES)}"


@dataclass(frozen=True)
class _Checked:
    name: str | None
    settings: dict[str, Any] | None


def _check(
    name: str | None,
    description: str | None,
    settings: dict[str, Any] | None,
    base: dict[str, Any] | None,
    problems: Problems,
    strict: bool,
) -> _Checked:
    """Name, description and settings checked together: every problem is collected."""
    clean_name = None if name is None else (name or "").strip()
    if clean_name is not None and not 1 <= len(clean_name) <= MAX_NAME:
        problems.add("name", f"a project name has 1 to {MAX_NAME} characters")
    if description is not None and len(description) > MAX_DESCRIPTION:
        problems.add("description", f"at most {MAX_DESCRIPTION:,} characters")
    parsed = None
    if settings is not None or base is None:
        with problems.collecting():
            parsed = parse_settings(settings, base=base, strict=strict).model_dump()
    problems.raise_if_any()
    return _Checked(clean_name, parsed)


def create_project(
    session: Session,
    name: str,
    settings: dict[str, Any] | None = None,
    *,
    description: str = "",
    status: str = ProjectStatus.active.value,
    strict: bool = False,
) -> Project:
    """A new project; raises ValidationFailed naming every bad field, Conflict (name taken).
    ``strict``: the settings' values have their JSON types (the API), not strings to convert."""
    problems = Problems()
    if status not in PROJECT_STATUSES:
        problems.add("status", STATUSES)
    checked = _check(name, description or "", settings, None, problems, strict)
    project = Project(
        name=checked.name,
        description=description or "",
        status=status,
        settings=checked.settings,
    )
    session.add(project)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a project named {name!r} already exists") from exc
    return project


def settings_of(project: Project) -> ProjectSettings:
    """The project's stored settings, validated."""
    return ProjectSettings.model_validate(project.settings)


def update_project(
    session: Session,
    project: Project,
    *,
    name: str | None = None,
    description: str | None = None,
    settings: dict[str, Any] | None = None,
    status: str | None = None,
    strict: bool = False,
) -> Project:
    """Change name, description, some settings (merged over the current ones) and the
    status, in one transaction: everything is checked before anything changes (``strict``:
    as in ``create_project``)."""
    target = _target_status(project, status) if status is not None else None
    checked = _check(name, description, settings, project.settings, Problems(), strict)
    if checked.name is not None:
        project.name = checked.name
    if description is not None:
        project.description = description
    if checked.settings is not None:
        project.settings = checked.settings
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
        raise ValidationFailed.single("status", STATUSES) from exc
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

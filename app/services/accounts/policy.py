"""The one place that decides who may see or do what (SPEC §1).

Admins see everything. A labeler sees only projects they are a member of; anything else
looks like it does not exist (NotFound), and admin-only actions are Forbidden.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.db.models import Project, ProjectMember, Role, User
from app.domain.errors import Forbidden, NotFound


def is_admin(user: User) -> bool:
    return user.role == Role.admin.value


def require_admin(user: User) -> None:
    if not is_admin(user):
        raise Forbidden("this needs the admin role")


def is_member(session: Session, user: User, project_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    ProjectMember.project_id == project_id, ProjectMember.user_id == user.id
                )
            )
        )
    )


def visible_project(session: Session, user: User, project_id: int) -> Project:
    """The project, if this user may see it; NotFound otherwise."""
    project = session.get(Project, project_id)
    if project is None or (not is_admin(user) and not is_member(session, user, project_id)):
        raise NotFound(f"project {project_id} not found")
    return project

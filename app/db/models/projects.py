"""Projects and their members (SPEC §2)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column


class ProjectStatus(StrEnum):
    """Lifecycle of a project.

    draft: being set up, labelers get no tasks. active: labelers get tasks.
    paused: temporarily closed to labelers. archived: read-only, hidden by default.
    """

    draft = "draft"
    active = "active"
    paused = "paused"
    archived = "archived"


ALLOWED_TRANSITIONS: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    ProjectStatus.draft: frozenset({ProjectStatus.active, ProjectStatus.archived}),
    ProjectStatus.active: frozenset({ProjectStatus.paused, ProjectStatus.archived}),
    ProjectStatus.paused: frozenset({ProjectStatus.active, ProjectStatus.archived}),
    ProjectStatus.archived: frozenset({ProjectStatus.paused}),
}


class Project(Base):
    """A prompt set plus its labeling settings (JSONB, validated by ``ProjectSettings``)."""

    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'paused', 'archived')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=ProjectStatus.active.value)
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_at_column()


class ProjectMember(Base):
    """A labeler (or admin) who may label in a project."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = created_at_column()

"""Assignments (leases) and judgments (SPEC §2)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column
from app.db.models.prompts import Prompt

EMPTY_JSON = text("'{}'::jsonb")


class AssignmentStatus(StrEnum):
    """active: leased to the labeler until expires_at. submitted: a judgment was recorded.
    skipped: the labeler passed; the slot is freed. expired: the lease ran out; slot freed."""

    active = "active"
    submitted = "submitted"
    skipped = "skipped"
    expired = "expired"


class Assignment(Base):
    """One labeler holding one prompt; ``display_order`` is the shuffled order shown."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("prompt_id", "labeler_id"),
        CheckConstraint("status IN ('active', 'submitted', 'skipped', 'expired')", name="status"),
        Index(
            "ix_assignments_active_expiry",
            "project_id",
            "expires_at",
            postgresql_where="status = 'active'",
        ),
        Index("ix_assignments_labeler", "labeler_id", "project_id", "status"),
        Index(
            "ix_assignments_one_active_lease",
            "project_id",
            "labeler_id",
            unique=True,
            postgresql_where="status = 'active'",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    labeler_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=AssignmentStatus.active.value)
    display_order: Mapped[list[Any]]
    is_gold: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Judgment(Base):
    """A labeler's ranking of one prompt's completions (or reject_all).

    Imported judgments from external labelers have no assignment.
    """

    __tablename__ = "judgments"
    __table_args__ = (
        UniqueConstraint("prompt_id", "labeler_id"),
        CheckConstraint("reject_all OR ranking IS NOT NULL", name="ranking_or_reject"),
        CheckConstraint("char_length(rationale) <= 5000", name="rationale_length"),
        CheckConstraint("duration_ms IS NULL OR duration_ms >= 0", name="duration_nonnegative"),
        Index("ix_judgments_project_created", "project_id", "created_at"),
        Index("ix_judgments_labeler", "labeler_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    labeler_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL"), unique=True
    )
    ranking: Mapped[list[Any] | None]
    reject_all: Mapped[bool] = mapped_column(default=False, server_default=false())
    ratings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_JSON)
    flags: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_JSON)
    rationale: Mapped[str] = mapped_column(Text, default="", server_default="")
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    display_order: Mapped[list[Any] | None]
    body_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()


# The labeling queue (migration 0002): prompts with a free slot, nearest completion first.
# Declared here, beside the code that needs it, on the prompts table.
Index(
    "ix_prompts_open_queue",
    Prompt.project_id,
    Prompt.slots_taken.desc(),
    Prompt.id,
    postgresql_where=text("NOT is_gold AND slots_taken < target_labels"),
)

"""Training runs as a queue, and their metrics by step (SPEC §10)."""

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
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column


class RunKind(StrEnum):
    reward = "reward"
    dpo = "dpo"
    ppo = "ppo"
    generate = "generate"


class RunStatus(StrEnum):
    """queued: waiting for a worker. running: claimed, heartbeating. succeeded / failed /
    cancelled: final (a failed or cancelled run may be retried, which queues it again)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class TrainingRun(Base):
    """One training or generation job; workers claim rows with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint("kind IN ('reward', 'dpo', 'ppo', 'generate')", name="kind"),
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        Index("ix_training_runs_queue", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.queued.value)
    config: Mapped[dict[str, Any]]
    export_id: Mapped[int | None] = mapped_column(ForeignKey("exports.id", ondelete="SET NULL"))
    base_model: Mapped[str] = mapped_column(String(500))
    parent_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    result_project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL")
    )
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    artifact_uri: Mapped[str | None] = mapped_column(String(1000))


class RunMetric(Base):
    """The values one run logged at one step; (run, step) is unique so a retried attempt
    overwrites rather than duplicates."""

    __tablename__ = "run_metrics"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]]
    samples: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = created_at_column()

"""Training runs as a queue, and their metrics by step (SPEC §10).

The tables, kinds, statuses and limits are defined once, in ``training.schema`` (the workers
use the same Core tables without importing the app); these classes map those very tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Mapped

from app.db.base import Base
from training.schema import RunKind, RunStatus, run_metrics, training_runs, workers

__all__ = ["RegisteredWorker", "RunKind", "RunMetric", "RunStatus", "TrainingRun"]


class TrainingRun(Base):
    """One training or generation job; workers claim rows with FOR UPDATE SKIP LOCKED."""

    __table__ = training_runs.to_metadata(Base.metadata)

    id: Mapped[int]
    kind: Mapped[str]
    status: Mapped[str]
    config: Mapped[dict[str, Any]]
    export_id: Mapped[int | None]
    base_model: Mapped[str]
    parent_run_id: Mapped[int | None]
    project_id: Mapped[int | None]
    result_project_id: Mapped[int | None]
    worker: Mapped[str | None]
    heartbeat_at: Mapped[datetime | None]
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    cancel_requested: Mapped[bool]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None]
    log_tail: Mapped[str]
    artifact_uri: Mapped[str | None]

    memory_plan = None
    """Not stored: the memory plan ``create_run`` computed (``training.memory``), or None."""

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish (to now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return max((end - self.started_at).total_seconds(), 0.0)


class RunMetric(Base):
    """The values one run logged at one step; (run, step) is unique so a retried attempt
    overwrites rather than duplicates."""

    __table__ = run_metrics.to_metadata(Base.metadata)

    id: Mapped[int]
    run_id: Mapped[int]
    step: Mapped[int]
    values: Mapped[dict[str, Any]]
    samples: Mapped[list[Any] | None]
    created_at: Mapped[datetime]


class RegisteredWorker(Base):
    """A worker that registered its GPUs when it started (``training.schema.workers``)."""

    __table__ = workers.to_metadata(Base.metadata)

    name: Mapped[str]
    devices: Mapped[list[dict[str, Any]]]
    processes: Mapped[int]
    kinds: Mapped[list[str]]
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]

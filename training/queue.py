"""The runs queue as the worker sees it: the two tables of ``training.schema`` (Core only,
no app import), the shared folder layout, claiming a run with ``FOR UPDATE SKIP LOCKED`` and
re-queueing runs whose worker stopped heartbeating. ``training.worker`` runs what it claims.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from training.schema import (
    LOG_TAIL_CHARS,
    RunKind,
    RunStatus,
    run_metrics,
    training_runs,
    workers,
)

log = logging.getLogger("training.queue")

INPUTS_DIR = "inputs"
PROMPTS_FILE = "prompts.jsonl"


@dataclass(frozen=True)
class RunPaths:
    """Where a run's inputs and outputs live under the shared ``DATA_DIR``::

    DATA_DIR/exports/<export_id>/          manifest.json + pairs.jsonl (SPEC §5)
    DATA_DIR/runs/<run_id>/                the run folder: adapter/, metrics.jsonl, ...
    DATA_DIR/runs/<run_id>/inputs/         written by the app when the run is created
                                           (prompts.jsonl for generate runs)
    """

    data_dir: Path

    def export_dir(self, export_id: int) -> Path:
        return self.data_dir / "exports" / str(export_id)

    def run_dir(self, run_id: int) -> Path:
        return self.data_dir / "runs" / str(run_id)

    def prompts_file(self, run_id: int) -> Path:
        return self.run_dir(run_id) / INPUTS_DIR / PROMPTS_FILE


@dataclass(frozen=True)
class ClaimedRun:
    """One attempt of a run, owned by this worker."""

    id: int
    kind: str
    config: dict[str, Any]
    export_id: int | None
    base_model: str
    parent_run_id: int | None
    attempt: int
    worker: str
    log_tail: str = ""


def owned_attempt(run: ClaimedRun) -> Any:
    """The WHERE clause that holds while this attempt still owns the row."""
    c = training_runs.c
    return sa.and_(
        c.id == run.id,
        c.worker == run.worker,
        c.attempts == run.attempt,
        c.status == RunStatus.running,
    )


def requeue_stale(engine: sa.Engine, stale_seconds: float) -> list[tuple[int, str]]:
    """Re-queue (or fail, or cancel) running runs whose heartbeat is older than
    ``stale_seconds``; returns ``[(run_id, new_status)]``. Safe to call from many workers."""
    c, stale = training_runs.c, float(stale_seconds)
    give_up = c.attempts >= c.max_attempts
    new_status = sa.case(
        (c.cancel_requested, RunStatus.cancelled.value),
        (give_up, RunStatus.failed.value),
        else_=RunStatus.queued.value,
    )
    note = sa.func.concat(
        "\n[requeue] worker ",
        c.worker,
        " stopped heartbeating (attempt ",
        c.attempts,
        " of ",
        c.max_attempts,
        ")",
    )
    stmt = (
        sa.update(training_runs)
        .where(
            c.status == RunStatus.running,
            c.heartbeat_at < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, stale),
        )
        .values(
            status=new_status,
            error=sa.case(
                (
                    give_up & ~c.cancel_requested,
                    sa.func.concat(
                        "worker ",
                        c.worker,
                        " stopped heartbeating; gave up after ",
                        c.attempts,
                        " attempt(s)",
                    ),
                ),
                else_=c.error,
            ),
            finished_at=sa.case((new_status == RunStatus.queued.value, None), else_=sa.func.now()),
            log_tail=sa.func.right(sa.func.concat(c.log_tail, note), LOG_TAIL_CHARS),
            worker=None,
            heartbeat_at=None,
        )
        .returning(c.id, c.status)
    )
    with engine.begin() as conn:
        return [(row.id, row.status) for row in conn.execute(stmt)]


def claim(
    engine: sa.Engine, worker: str, kinds: Sequence[str] = tuple(RunKind)
) -> ClaimedRun | None:
    """Claim the oldest queued run of one of ``kinds``; None when there is none."""
    c = training_runs.c
    oldest = (
        sa.select(c.id)
        .where(c.status == RunStatus.queued, c.kind.in_([str(k) for k in kinds]))
        .order_by(c.created_at, c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        sa.update(training_runs)
        .where(c.id == oldest)
        .values(
            status=RunStatus.running.value,
            attempts=c.attempts + 1,
            worker=worker,
            started_at=sa.func.now(),
            heartbeat_at=sa.func.now(),
            finished_at=None,
            error=None,
            cancel_requested=False,
            artifact_uri=None,
        )
        .returning(
            c.id,
            c.kind,
            c.config,
            c.export_id,
            c.base_model,
            c.parent_run_id,
            c.attempts,
            c.log_tail,
        )
    )
    with engine.begin() as conn:
        row = conn.execute(stmt).first()
        if row is None:
            return None
        conn.execute(run_metrics.delete().where(run_metrics.c.run_id == row.id))
    return ClaimedRun(
        id=row.id,
        kind=row.kind,
        config=dict(row.config or {}),
        export_id=row.export_id,
        base_model=row.base_model,
        parent_run_id=row.parent_run_id,
        attempt=row.attempts,
        worker=worker,
        log_tail=row.log_tail or "",
    )


def json_safe(value: Any) -> Any:
    """JSONB refuses NaN and infinities: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def register_worker(
    engine: sa.Engine,
    name: str,
    devices: list[dict[str, Any]],
    processes: int,
    kinds: Sequence[str],
) -> None:
    """Write (or replace) this worker's row of ``workers``: its GPUs, processes and kinds."""
    values = {"devices": devices, "processes": processes, "kinds": [str(k) for k in kinds]}
    stmt = pg_insert(workers).values(name=name, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={**values, "started_at": sa.func.now(), "seen_at": sa.func.now()},
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def touch_worker(conn: sa.Connection, name: str) -> None:
    """Say this worker is alive (``seen_at``), in the caller's transaction."""
    conn.execute(sa.update(workers).where(workers.c.name == name).values(seen_at=sa.func.now()))


def unregister_worker(engine: sa.Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(workers).where(workers.c.name == name))

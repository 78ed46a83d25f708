"""The run-queue contract, once: run kinds, run statuses and their moves, the size limits,
and the two tables (SQLAlchemy Core) that the app and the workers share.

Everything else derives from this module: the ORM classes (``app.db.models.runs`` maps these
very tables), their CHECK constraints, the API's ``kind`` choices, the dashboard's kinds, the
worker's ``--kinds``. The migrations are checked against these tables by
``tests/test_schema_drift.py``. Importing it needs SQLAlchemy only (no app, no torch).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


class RunKind(StrEnum):
    """What a run does; each kind has a config class in ``training.config.CONFIG_CLASSES``."""

    reward = "reward"
    """A reward model (Bradley–Terry, LoRA) trained on an export's pairs."""
    dpo = "dpo"
    """A policy trained with DPO on an export's pairs (reference: the base, adapter off)."""
    ppo = "ppo"
    """A policy trained with PPO on an export's prompts, scored by a succeeded reward run."""
    generate = "generate"
    """Completions sampled from a policy run and its base: the next labeling round."""
    suspects = "suspects"
    """Likely mislabels: reward models trained out of fold score every pair of an export
    (strategy ``all``) with a model that never saw it (``training.suspects``)."""


class RunStatus(StrEnum):
    """Where a run is in the queue; :data:`TRANSITIONS` lists the moves between them."""

    queued = "queued"
    """Waiting for a worker (new, retried, or handed back by a stopping or silent worker)."""
    running = "running"
    """Claimed by one worker, which heartbeats while it trains."""
    succeeded = "succeeded"
    """Final: the run folder holds its outputs (``artifact_uri``)."""
    failed = "failed"
    """Final: ``error`` says why (or every attempt's worker stopped heartbeating)."""
    cancelled = "cancelled"
    """Final: an admin cancelled it (a running run stops at its next logging step)."""


TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    # claimed by a worker; an admin cancels a queued run at once
    RunStatus.queued: frozenset({RunStatus.running, RunStatus.cancelled}),
    # the worker's outcome; queued again when the worker stops or its heartbeat is stale
    # (failed once the attempts are spent, cancelled when a cancel was requested)
    RunStatus.running: frozenset(
        {RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled, RunStatus.queued}
    ),
    RunStatus.succeeded: frozenset(),
    # an admin retries a failed or cancelled run, with a fresh budget of attempts
    RunStatus.failed: frozenset({RunStatus.queued}),
    RunStatus.cancelled: frozenset({RunStatus.queued}),
}
"""Every status a run may move to from each status, and nothing else."""

FINAL: tuple[RunStatus, ...] = (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)
"""The statuses no worker moves a run out of."""
RETRYABLE: tuple[RunStatus, ...] = tuple(s for s in FINAL if RunStatus.queued in TRANSITIONS[s])
"""The final statuses an admin may queue again."""
POLICY_KINDS: tuple[RunKind, ...] = (RunKind.dpo, RunKind.ppo)
"""Kinds whose adapter is a policy (a generate run samples from one)."""
PARENT_KINDS: dict[RunKind, tuple[RunKind, ...]] = {
    RunKind.ppo: (RunKind.reward,),
    RunKind.generate: POLICY_KINDS,
}
"""The kinds a run's parent may be; a kind missing here takes no parent."""


def can_move(current: str, target: str) -> bool:
    """Whether :data:`TRANSITIONS` allows ``current -> target``."""
    return RunStatus(target) in TRANSITIONS[RunStatus(current)]


# Limits (characters unless said otherwise).
KIND_CHARS = 16
STATUS_CHARS = 16
BASE_MODEL_CHARS = 500
WORKER_CHARS = 200
ARTIFACT_URI_CHARS = 1000
LOG_TAIL_CHARS = 20_000
"""What SQL writes of ``log_tail`` (retry, stale requeue) keeps: its last 20 000 characters."""
LOG_TAIL_LINES = 200
"""The lines a worker keeps of a run's log (earlier attempts' lines first)."""
ERROR_CHARS = 4000
"""The end of a failed run's error message that is stored."""
DEFAULT_MAX_ATTEMPTS = 3


def _in(column: str, choices: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(c.value) for c in choices)})"


metadata = sa.MetaData()
_TS, _ID, JSON_TYPE = sa.DateTime(timezone=True), sa.BigInteger, JSONB(none_as_null=True)


def _optional(name: str, kind: Any, *args: Any) -> sa.Column:
    return sa.Column(name, kind, *args, nullable=True)


def _required(name: str, kind: Any, *args: Any, **kw: Any) -> sa.Column:
    return sa.Column(name, kind, *args, nullable=False, **kw)


def _created_at() -> sa.Column:
    return _required("created_at", _TS, server_default=sa.func.now())


training_runs = sa.Table(
    "training_runs",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    _required("kind", sa.String(KIND_CHARS)),
    _required("status", sa.String(STATUS_CHARS), default=RunStatus.queued.value),
    _required("config", JSON_TYPE),
    _optional("export_id", _ID, sa.ForeignKey("exports.id", ondelete="SET NULL")),
    _required("base_model", sa.String(BASE_MODEL_CHARS)),
    _optional("parent_run_id", _ID, sa.ForeignKey("training_runs.id", ondelete="SET NULL")),
    _optional("project_id", _ID, sa.ForeignKey("projects.id", ondelete="SET NULL")),
    _optional("result_project_id", _ID, sa.ForeignKey("projects.id", ondelete="SET NULL")),
    _optional("worker", sa.String(WORKER_CHARS)),
    _optional("heartbeat_at", _TS),
    _required("attempts", sa.Integer, default=0),
    _required("max_attempts", sa.Integer, default=DEFAULT_MAX_ATTEMPTS),
    _required("cancel_requested", sa.Boolean, default=False),
    _created_at(),
    _optional("started_at", _TS),
    _optional("finished_at", _TS),
    _optional("error", sa.Text),
    _required("log_tail", sa.Text, default=""),
    _optional("artifact_uri", sa.String(ARTIFACT_URI_CHARS)),
    sa.CheckConstraint(_in("kind", RunKind), name="kind"),
    sa.CheckConstraint(_in("status", RunStatus), name="status"),
    sa.Index("ix_training_runs_queue", "status", "created_at"),
)
"""One training or generation job; workers claim rows with FOR UPDATE SKIP LOCKED."""

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    _required("run_id", _ID, sa.ForeignKey("training_runs.id", ondelete="CASCADE")),
    _required("step", sa.Integer),
    _required("values", JSON_TYPE),
    _optional("samples", JSON_TYPE),
    _created_at(),
    sa.UniqueConstraint("run_id", "step"),
)
"""The values one run logged at one step; (run, step) is unique so a retried attempt
overwrites rather than duplicates."""

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(WORKER_CHARS), primary_key=True),
    _required("devices", JSON_TYPE),
    _required("processes", sa.Integer),
    _required("kinds", JSON_TYPE),
    _required("started_at", _TS, server_default=sa.func.now()),
    _required("seen_at", _TS, server_default=sa.func.now()),
)
"""The workers that said they serve runs: their GPUs (``[{"index", "name", "memory_bytes"}]``,
empty on a CPU worker), the processes a run gets and the kinds served. A worker writes its row
when it starts, bumps ``seen_at`` while it lives and deletes the row when it stops cleanly; the
app plans runs against the GPU workers seen within ``WORKER_SEEN_HOURS``."""

WORKER_SEEN_HOURS = 24
"""A worker row older than this (a worker that was killed) no longer counts for planning."""

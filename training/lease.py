"""A worker's hold on one attempt of a run: the log tail it keeps and the lease (heartbeat
thread, conditional writes of metrics and of the outcome). See ``training.worker``."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from training.queue import ClaimedRun, json_safe, owned_attempt, touch_worker
from training.runtime import Callbacks
from training.schema import (
    ERROR_CHARS,
    JSON_TYPE,
    LOG_TAIL_LINES,
    TRANSITIONS,
    RunStatus,
    run_metrics,
    training_runs,
)

log = logging.getLogger("training.worker")


class LogTail(logging.Handler):
    """The last lines logged (root and transformers loggers) while a run executes, after the
    lines of earlier attempts."""

    def __init__(self, earlier: str = "") -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(earlier.splitlines(), maxlen=LOG_TAIL_LINES)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 — a log line must never break a run
            self.handleError(record)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)

    @contextmanager
    def attached(self) -> Iterator[LogTail]:
        loggers = [logging.getLogger(), logging.getLogger("transformers")]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


class Lease(Callbacks):
    """Ownership of one attempt: the heartbeat thread, every conditional write, and the
    ``training.Callbacks`` of the run (metrics to the database, cancel from it)."""

    def __init__(
        self,
        engine: sa.Engine,
        run: ClaimedRun,
        heartbeat_seconds: float,
        stopping: threading.Event,
        tail: LogTail,
    ) -> None:
        self.engine, self.run, self.tail = engine, run, tail
        self.heartbeat_seconds = heartbeat_seconds
        self.stopping = stopping
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run.id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.heartbeat_seconds):
            try:
                self.heartbeat()
            except OperationalError as exc:  # the database is away; the next beat retries
                log.warning("heartbeat of run %s failed: %s", self.run.id, exc)

    def heartbeat(self) -> None:
        stmt = (
            sa.update(training_runs)
            .where(owned_attempt(self.run))
            .values(heartbeat_at=sa.func.now(), log_tail=self.tail.text())
            .returning(training_runs.c.id)
        )
        with self.engine.begin() as conn:
            if conn.execute(stmt).first() is None:
                self.lost = True
            touch_worker(conn, self.run.worker)

    def cancel_requested(self) -> bool:
        """True once the run is cancelled, no longer ours, or the worker is stopping."""
        if self.stopping.is_set() or self.lost:
            return True
        c = training_runs.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.cancel_requested).where(owned_attempt(self.run))).first()
        if row is None:
            self.lost = True
            return True
        return bool(row.cancel_requested)

    def record(self, step: int, values: dict[str, float], samples: list[dict] | None) -> None:
        """Upsert one logging step (merging values logged twice at the same step)."""
        owned = sa.exists().where(owned_attempt(self.run))
        source = sa.select(
            sa.literal(self.run.id, sa.BigInteger),
            sa.literal(step, sa.Integer),
            sa.literal(json_safe(values), JSON_TYPE),
            sa.literal(json_safe(samples), JSON_TYPE),
        ).where(owned)
        stmt = pg_insert(run_metrics).from_select(["run_id", "step", "values", "samples"], source)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "step"],
            set_={
                "values": run_metrics.c["values"].op("||")(stmt.excluded["values"]),
                "samples": sa.func.coalesce(stmt.excluded.samples, run_metrics.c.samples),
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def on_log(self, step: int, metrics: dict[str, float], samples: list[dict] | None) -> None:
        self.tail.add(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        try:
            self.record(step, metrics, samples)
        except OperationalError as exc:  # losing one step of metrics must not kill the run
            log.warning("could not store metrics of run %s step %s: %s", self.run.id, step, exc)

    def on_samples(self, step: int, samples: list[dict] | None) -> None:
        """Attach the sample completions logged at ``step`` (merged with its values)."""
        if not samples:
            return
        try:
            self.record(step, {}, samples)
        except OperationalError as exc:
            log.warning("could not store samples of run %s step %s: %s", self.run.id, step, exc)

    def should_stop(self) -> bool:
        try:
            return self.cancel_requested()
        except OperationalError:
            return self.stopping.is_set()

    def finish(
        self, status: str, *, error: str | None = None, artifact_uri: str | None = None
    ) -> bool:
        """Close the attempt; False when the lease was already lost (nothing is written)."""
        status = RunStatus(status)
        if status not in TRANSITIONS[RunStatus.running]:
            raise ValueError(f"a running run cannot become {status.value!r}")
        values: dict[str, Any] = {
            "status": status.value,
            "log_tail": self.tail.text(),
            "error": error[-ERROR_CHARS:] if error else None,
        }
        if status == RunStatus.queued:
            values.update(worker=None, heartbeat_at=None, started_at=None)
        else:
            values.update(finished_at=sa.func.now(), artifact_uri=artifact_uri)
        stmt = (
            sa.update(training_runs)
            .where(owned_attempt(self.run))
            .values(**values)
            .returning(training_runs.c.id)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

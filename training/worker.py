"""The training worker: claims queued runs from the ``training_runs`` table and runs them.

Workers on one machine or many share one PostgreSQL database and one ``DATA_DIR`` (a shared
folder, see ``RunPaths``). This module never imports the web app: it uses the two tables of
``training.schema`` (Core only) and reads the export format. The life of a run here:

1. **claim** — the oldest queued run of a kind this worker serves, with ``SELECT … FOR UPDATE
   SKIP LOCKED``: ``attempts += 1``, ``running``, ``worker``, ``started_at``, ``heartbeat_at``;
   the metrics of an earlier attempt are dropped.
2. **lease** — a thread bumps ``heartbeat_at`` every ``heartbeat_seconds`` and saves the log
   tail. Every write is conditional on still owning the attempt (id, worker, attempt, running),
   so a worker that lost its lease never overwrites the attempt that replaced it.
3. **run** — ``training.run`` with callbacks that upsert each logging step into ``run_metrics``
   (unique ``(run_id, step)``; two logs at one step are merged) and stop the run at the next
   logging step once a cancel is requested, the lease is lost or the worker is stopping.
4. **finish** — ``succeeded`` (``artifact_uri`` = the run folder), ``failed`` (error + log
   tail), ``cancelled``, or ``queued`` again when the worker itself stops (SIGTERM/SIGINT).

Any worker re-queues a running run whose heartbeat is older than ``stale_seconds`` — or fails it
once ``attempts >= max_attempts``, or cancels it when a cancel was requested.
"""

from __future__ import annotations

import logging
import shutil
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from training.queue import (
    INPUTS_DIR,
    ClaimedRun,
    RunPaths,
    claim,
    json_safe,
    owned_attempt,
    requeue_stale,
)
from training.runtime import Callbacks
from training.schema import (
    ERROR_CHARS,
    JSON_TYPE,
    LOG_TAIL_LINES,
    TRANSITIONS,
    RunKind,
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


def _clear_outputs(out: Path) -> None:
    """Empty the run folder of an earlier attempt's outputs, keeping the app's inputs."""
    if not out.is_dir():
        return
    for child in out.iterdir():
        if child.name == INPUTS_DIR:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


OnSuccess = Callable[[ClaimedRun, Any], None]


class Worker:
    """Claims and runs training runs until stopped (or once, with ``once=True``).

    ``on_success(run, result)`` runs after ``training.run`` returns and before the run is marked
    succeeded; if it raises, the run fails with that error (the app uses it to turn a generate
    run's output into a labeling project, see ``app.services.runs.next_round``).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        name: str,
        data_dir: Path,
        heartbeat_seconds: float = 10.0,
        stale_seconds: float = 60.0,
        poll_seconds: float = 5.0,
        kinds: Sequence[str] = tuple(RunKind),
        on_success: OnSuccess | None = None,
    ) -> None:
        unknown = sorted(set(kinds) - set(RunKind))
        if unknown or not kinds:
            choices = [k.value for k in RunKind]
            raise ValueError(f"kinds must be some of {choices}, got {list(kinds)}")
        self.engine, self.name, self.paths = engine, name, RunPaths(Path(data_dir))
        self.heartbeat_seconds, self.stale_seconds = heartbeat_seconds, stale_seconds
        self.poll_seconds, self.kinds, self.on_success = poll_seconds, tuple(kinds), on_success
        self.stopping = threading.Event()

    def stop(self) -> None:
        """Ask the worker to stop: the current run stops at its next logging step and is
        queued again; no new run is claimed."""
        self.stopping.set()

    def run_forever(self, once: bool = False) -> int:
        """Serve runs until stopped; with ``once``, at most one run (none queued: return at
        once). Returns how many runs this call executed."""
        executed = 0
        while not self.stopping.is_set():
            run = self.next_run()
            if run is None:
                if once:
                    break
                self.stopping.wait(self.poll_seconds)
                continue
            try:
                self.execute(run)
            except OperationalError as exc:  # the run is re-queued once its heartbeat is stale
                log.error("database lost while closing run %s: %s", run.id, exc)
            executed += 1
            if once:
                break
        return executed

    def next_run(self) -> ClaimedRun | None:
        """Re-queue stale runs, then claim the oldest queued one this worker serves."""
        try:
            for run_id, status in requeue_stale(self.engine, self.stale_seconds):
                log.warning("run %s had a stale heartbeat: now %s", run_id, status)
            return claim(self.engine, self.name, self.kinds)
        except OperationalError as exc:
            log.warning("database unavailable, will retry: %s", exc)
            return None

    def execute(self, run: ClaimedRun) -> str:
        """Run one claimed attempt to its end; returns the status it ended in (``"lost"`` when
        another worker had taken the run over)."""
        log.info("worker %s runs %s run %s (attempt %s)", self.name, run.kind, run.id, run.attempt)
        tail = LogTail(run.log_tail)
        with (
            tail.attached(),
            Lease(self.engine, run, self.heartbeat_seconds, self.stopping, tail) as lease,
        ):
            tail.add(
                f"[worker] {self.name} started attempt {run.attempt} of run {run.id} "
                f"({run.kind}, base {run.base_model})"
            )
            status, error = self._attempt(run, lease)
            tail.add(f"[worker] attempt {run.attempt} ended: {status}")
            artifact = str(self.paths.run_dir(run.id)) if status == RunStatus.succeeded else None
            if not lease.finish(status, error=error, artifact_uri=artifact):
                log.warning(
                    "run %s was taken from worker %s; its result is dropped", run.id, self.name
                )
                return "lost"
        return status.value

    def _attempt(self, run: ClaimedRun, lease: Lease) -> tuple[RunStatus, str | None]:
        from training import Cancelled

        try:
            result = self._train(run, lease)
            if self.on_success is not None:
                self.on_success(run, result)
        except Cancelled:
            stopped = RunStatus.queued if self.stopping.is_set() else RunStatus.cancelled
            return stopped, None
        except Exception as exc:  # noqa: BLE001 — any error of a run is the run's failure
            lease.tail.add(traceback.format_exc().rstrip())
            log.error("run %s failed: %s", run.id, exc)
            return RunStatus.failed, f"{type(exc).__name__}: {exc}"
        return RunStatus.succeeded, None

    def _train(self, run: ClaimedRun, callbacks: Callbacks) -> Any:
        import training

        out = self.paths.run_dir(run.id)
        _clear_outputs(out)
        data = self.paths.export_dir(run.export_id) if run.export_id is not None else None
        extra: dict[str, Any] = {}
        if run.kind == RunKind.ppo and run.parent_run_id is not None:
            extra["reward"] = self.paths.run_dir(run.parent_run_id)
        if run.kind == RunKind.generate:
            extra["prompts"] = self.paths.prompts_file(run.id)
            if run.parent_run_id is not None:
                extra["adapter"] = self.paths.run_dir(run.parent_run_id)
        return training.run(
            run.kind,
            data=data,
            model=run.base_model,
            out=out,
            config=run.config,
            callbacks=callbacks,
            **extra,
        )

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
3. **run** — the run is a child job (``training.launch``): ``accelerate launch`` of
   ``python -m training job`` with one process per GPU (the run's ``num_processes`` when
   smaller; ``--processes`` on a CPU worker, gloo backend), started as its own process group
   that dies with the worker. Rank 0 writes ``metrics.jsonl`` and ``samples.jsonl``; the worker
   follows them and upserts each logging step into ``run_metrics`` (unique ``(run_id, step)``;
   two logs at one step are merged), streams ``train.log`` into the log tail, and stops the
   group (SIGTERM, SIGKILL after ``grace_seconds``) once a cancel is requested, the lease is
   lost or the worker is stopping.
4. **finish** — ``succeeded`` (``artifact_uri`` = the run folder), ``failed`` (the error a
   process raised, "out of GPU memory" said plainly, and the last lines of the log),
   ``cancelled``, or ``queued`` again when the worker itself stops (SIGTERM/SIGINT).

Any worker re-queues a running run whose heartbeat is older than ``stale_seconds`` — or fails it
once ``attempts >= max_attempts``, or cancels it when a cancel was requested.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from training.devices import Device, visible_gpus
from training.jobs import (
    LOG_FILE,
    failure_message,
    process_count,
    read_ranks,
    read_result,
    write_job,
)
from training.launch import ChildJob, Follower, launch_argv, launch_env
from training.lease import Lease, LogTail
from training.queue import (
    INPUTS_DIR,
    ClaimedRun,
    RunPaths,
    claim,
    register_worker,
    requeue_stale,
    touch_worker,
    unregister_worker,
)
from training.runtime import METRICS_FILE, SAMPLES_FILE
from training.schema import RunKind, RunStatus

__all__ = ["Lease", "LogTail", "Worker"]

log = logging.getLogger("training.worker")


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
CHECK_SECONDS = 1.0
"""How often a running job's cancel flag is read from the database."""


class Worker:
    """Claims runs and runs each as a child job until stopped (or once, with ``once=True``).

    ``devices`` are the GPUs the worker uses (default: those ``nvidia-smi`` shows within
    ``CUDA_VISIBLE_DEVICES``); ``processes`` is how many processes a run gets (default: one
    per GPU, one on a CPU worker). ``on_success(run, result)`` runs after the job succeeded and
    before the run is marked succeeded; if it raises, the run fails with that error (the app
    uses it to turn a generate run's output into a labeling project, see
    ``app.services.runs.next_round``).
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
        devices: Sequence[Device] | None = None,
        processes: int | None = None,
        grace_seconds: float = 10.0,
    ) -> None:
        unknown = sorted(set(kinds) - set(RunKind))
        if unknown or not kinds:
            choices = [k.value for k in RunKind]
            raise ValueError(f"kinds must be some of {choices}, got {list(kinds)}")
        if processes is not None and processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.engine, self.name, self.paths = engine, name, RunPaths(Path(data_dir))
        self.heartbeat_seconds, self.stale_seconds = heartbeat_seconds, stale_seconds
        self.poll_seconds, self.kinds, self.on_success = poll_seconds, tuple(kinds), on_success
        self.devices = list(visible_gpus() if devices is None else devices)
        self.processes = processes or max(1, len(self.devices))
        self.grace_seconds = grace_seconds
        self.stopping = threading.Event()

    @property
    def cuda(self) -> bool:
        return bool(self.devices)

    def stop(self) -> None:
        """Ask the worker to stop: the current run's processes are stopped and the run is
        queued again; no new run is claimed."""
        self.stopping.set()

    def run_forever(self, once: bool = False) -> int:
        """Serve runs until stopped; with ``once``, at most one run (none queued: return at
        once). Returns how many runs this call executed."""
        self._register()
        try:
            return self._serve(once)
        finally:
            try:
                unregister_worker(self.engine, self.name)
            except OperationalError as exc:
                log.warning("could not unregister worker %s: %s", self.name, exc)

    def _register(self) -> None:
        devices = [d.to_dict() for d in self.devices]
        try:
            register_worker(self.engine, self.name, devices, self.processes, self.kinds)
        except OperationalError as exc:
            log.warning("could not register worker %s (will run anyway): %s", self.name, exc)

    def _serve(self, once: bool) -> int:
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
            with self.engine.begin() as conn:
                touch_worker(conn, self.name)
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
        with Lease(self.engine, run, self.heartbeat_seconds, self.stopping, tail) as lease:
            tail.add(
                f"[worker] {self.name} started attempt {run.attempt} of run {run.id} "
                f"({run.kind}, base {run.base_model})"
            )
            try:
                status, error = self._attempt(run, lease)
            except Exception as exc:  # noqa: BLE001 — the job could not even start
                log.exception("run %s could not be launched", run.id)
                status, error = RunStatus.failed, f"{type(exc).__name__}: {exc}"
            tail.add(f"[worker] attempt {run.attempt} ended: {status}")
            artifact = str(self.paths.run_dir(run.id)) if status == RunStatus.succeeded else None
            if not lease.finish(status, error=error, artifact_uri=artifact):
                log.warning(
                    "run %s was taken from worker %s; its result is dropped", run.id, self.name
                )
                return "lost"
        return status.value

    def _attempt(self, run: ClaimedRun, lease: Lease) -> tuple[RunStatus, str | None]:
        """Launch the job, follow it to its end, and say how it ended."""
        out = self.paths.run_dir(run.id)
        _clear_outputs(out)
        processes = process_count(run, self.processes)
        strategy = str(run.config.get("distributed") or "ddp")
        argv = launch_argv(write_job(self.paths, run), processes, strategy, self.cuda)
        job = ChildJob(argv, launch_env(self.cuda), out / LOG_FILE)
        where = f"{len(self.devices)} GPU(s)" if self.cuda else "CPU (gloo)"
        lease.tail.add(f"[worker] launching {processes} process(es) on {where}, {strategy}")
        job.start()
        try:
            code, stopped = _Follow(job, lease, out).until_done(self.stopping, self.grace_seconds)
        finally:
            job.reap()
        if stopped:
            return (RunStatus.queued if self.stopping.is_set() else RunStatus.cancelled), None
        if code != 0:
            error = failure_message(out, code, list(lease.tail.lines))
            log.error("run %s failed: %s", run.id, error.splitlines()[0])
            return RunStatus.failed, error
        return self._succeeded(run, lease, out)

    def _succeeded(self, run: ClaimedRun, lease: Lease, out: Path) -> tuple[RunStatus, str | None]:
        digests = {r["sha256"] for r in read_ranks(out)}
        if len(digests) > 1:
            return RunStatus.failed, "the processes ended with different adapter weights"
        if digests:
            count = len(read_ranks(out))
            lease.tail.add(f"[worker] adapter identical on {count} process(es)")
        try:
            result = read_result(out)
            if self.on_success is not None:
                self.on_success(run, result)
        except Exception as exc:  # noqa: BLE001 — a failing hook fails the run
            lease.tail.add(f"[worker] {type(exc).__name__}: {exc}")
            return RunStatus.failed, f"{type(exc).__name__}: {exc}"
        return RunStatus.succeeded, None


class _Follow:
    """The worker's side of a running job: the log into the tail, each logging step into
    ``run_metrics``, the stop decision (cancel, lost lease, stopping worker)."""

    def __init__(self, job: ChildJob, lease: Lease, out: Path) -> None:
        self.job, self.lease = job, lease
        self.log, self.metrics = Follower(out / LOG_FILE), Follower(out / METRICS_FILE)
        self.samples = Follower(out / SAMPLES_FILE)

    def until_done(self, stopping: threading.Event, grace: float) -> tuple[int, bool]:
        """``(exit code, stopped by us?)`` once the launcher ended."""
        checked = time.monotonic()
        while (code := self.job.poll()) is None:
            self.forward()
            if stopping.is_set() or (
                time.monotonic() - checked >= CHECK_SECONDS and self._should_stop()
            ):
                code = self.job.stop(grace)
                self.forward()
                return code, True
            if time.monotonic() - checked >= CHECK_SECONDS:
                checked = time.monotonic()
            stopping.wait(0.2)
        self.forward()
        return code, False

    def _should_stop(self) -> bool:
        return self.lease.should_stop()

    def forward(self) -> None:
        for line in self.log.lines():
            self.lease.tail.add(line)
        for line in self.metrics.lines():
            row = _json_line(line)
            if row is not None and "step" in row:
                step = int(row.pop("step"))
                values = {k: float("nan") if v is None else v for k, v in row.items()}
                self.lease.on_log(step, values, None)
        for line in self.samples.lines():
            row = _json_line(line)
            if row is not None and "step" in row:
                self.lease.on_samples(int(row["step"]), row.get("samples"))


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None

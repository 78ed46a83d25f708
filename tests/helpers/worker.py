"""Running workers in tests: a worker process of this checkout, waiting for a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.db.models import Export, RunMetric, TrainingRun
from tests.conftest import ROOT
from tests.factories import make_project
from tests.training.conftest import marker_rows, write_export

PREFLOOP = Path(sys.executable).parent / "prefloop"
SLOW_DPO = {"max_steps": 2000, "logging_steps": 1, "eval_fraction": 0.0}
"""A DPO config long enough to be caught running: a tiny-model step takes ~12 ms on a CPU,
and a cancel lands within about a second (``training.worker.CHECK_SECONDS`` plus the
metrics forwarding), so 40 steps could end first; 2 000 are 20+ s, cut short by any stop."""


def training_export(session: Session, exports_dir: Path, rows: int = 6) -> int:
    """A committed consensus export of ``rows`` chat pairs in a new project, its files written
    where the workers read them; returns its id."""
    export = Export(
        project_id=make_project(session).id,
        strategy="consensus",
        filters={},
        manifest={},
        path="",
    )
    session.add(export)
    session.flush()
    write_export(exports_dir / str(export.id), marker_rows(rows, chat=True))
    session.commit()
    return export.id


def run_row(engine: Engine, run_id: int) -> TrainingRun:
    """The run's row as committed now."""
    with Session(engine) as session:
        return session.get(TrainingRun, run_id)


def run_steps(engine: Engine, run_id: int) -> list[int]:
    """The steps the run has recorded so far, in order."""
    with Session(engine) as session:
        stmt = select(RunMetric.step).where(RunMetric.run_id == run_id).order_by(RunMetric.step)
        return list(session.scalars(stmt))


def worker_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),  # this checkout's packages, whatever is installed
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "WORKER_STALE_SECONDS": "10",
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "info",
        "ENVIRONMENT": "development",
    }


@contextmanager
def worker_process(
    name: str, env: dict[str, str], log: Path, *options: str
) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PREFLOOP), "worker", "--name", name, "--poll-seconds", "0.2", *options],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)

"""Two `prefloop worker` processes share one queue; the one running a run is killed with
SIGKILL mid-run: after the stale timeout the other re-queues the run, claims it and finishes it,
with each step's metrics stored once. SIGTERM then stops the idle worker cleanly."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.db.models import RunMetric, TrainingRun
from app.services.runs import queue as runs
from app.settings import Settings
from tests.helpers.worker import SLOW_DPO, training_export, wait_for, worker_env, worker_process
from tests.training.conftest import build_tiny_llama
from training.schema import FINAL

MAX_STEPS = 6


@pytest.mark.timeout(300)
def test_a_killed_workers_run_is_requeued_and_finished_by_another(databases, tmp_path):
    url = databases.new()
    settings = Settings(database_url=url, data_dir=tmp_path / "data")
    model = build_tiny_llama(tmp_path / "tiny")
    engine = create_engine(url)
    with Session(engine) as session:
        export_id = training_export(session, settings.exports_dir)
        run_id = runs.create_run(
            session,
            settings,
            runs.RunRequest(
                kind="dpo",
                export_id=export_id,
                base_model=str(model),
                preset="tiny-cpu",
                config={**SLOW_DPO, "max_steps": MAX_STEPS},
            ),
        ).id

    def current() -> TrainingRun:
        with Session(engine) as session:
            return session.get(TrainingRun, run_id)

    def metric_count() -> int:
        with Session(engine) as session:
            return session.scalar(select(func.count()).where(RunMetric.run_id == run_id))

    env = worker_env(url, settings.data_dir)
    with (
        worker_process("A", env, tmp_path / "a.log") as a,
        worker_process("B", env, tmp_path / "b.log") as b,
    ):
        wait_for(lambda: current().status == "running" and metric_count() >= 2, 120)
        victim, survivor = (a, b) if current().worker == "A" else (b, a)
        victim_name = current().worker
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        wait_for(lambda: current().attempts == 2, 60)
        wait_for(lambda: current().status in FINAL, 120)
        done = current()
        assert done.status == "succeeded", done.error
        assert done.attempts == 2 and done.worker != victim_name
        assert f"[requeue] worker {victim_name} stopped heartbeating" in done.log_tail
        with Session(engine) as session:
            steps = list(
                session.scalars(
                    select(RunMetric.step)
                    .where(RunMetric.run_id == run_id)
                    .order_by(RunMetric.step)
                )
            )
        assert steps == list(range(1, MAX_STEPS + 1))  # every step once, none twice
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == 0
    survivor_log = (tmp_path / ("b.log" if survivor is b else "a.log")).read_text()
    assert "stopped after 1 run(s)" in survivor_log
    engine.dispose()

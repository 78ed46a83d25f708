"""The queue under the worker (training/worker.py): claiming, leases, stale runs, metrics."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.orm import Session

from app.db.models import RunMetric, TrainingRun
from training.queue import claim, requeue_stale
from training.worker import Lease, LogTail


@pytest.fixture(scope="module")
def module_engine(databases) -> Iterator[Engine]:
    """An engine on a database of this module: workers need committed rows."""
    engine = create_engine(databases.new(), pool_size=8)
    yield engine
    engine.dispose()


@pytest.fixture
def queue_engine(module_engine: Engine) -> Engine:
    with module_engine.begin() as conn:
        conn.execute(text("TRUNCATE training_runs, run_metrics CASCADE"))
    return module_engine


def queue_runs(engine: Engine, n: int, kind: str = "reward", **values) -> list[int]:
    with Session(engine) as session:
        runs = [
            TrainingRun(kind=kind, config={}, base_model="tiny", max_attempts=3, **values)
            for _ in range(n)
        ]
        session.add_all(runs)
        session.commit()
        return [r.id for r in runs]


def run_row(engine: Engine, run_id: int) -> TrainingRun:
    with Session(engine) as session:
        return session.get(TrainingRun, run_id)


def age_heartbeat(engine: Engine, run_id: int, seconds: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(heartbeat_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds))
        )


def test_four_workers_racing_claim_each_run_exactly_once(queue_engine):
    ids = queue_runs(queue_engine, 10)
    barrier = threading.Barrier(4)
    claimed: dict[str, list[int]] = {}

    def work(name: str) -> None:
        mine = claimed.setdefault(name, [])
        barrier.wait()
        while (run := claim(queue_engine, name)) is not None:
            mine.append(run.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    all_claims = [run_id for runs in claimed.values() for run_id in runs]
    assert Counter(all_claims) == Counter(ids)  # every run once, none twice
    for name, runs in claimed.items():
        for run_id in runs:
            row = run_row(queue_engine, run_id)
            assert (row.status, row.worker, row.attempts) == ("running", name, 1)
            assert row.started_at is not None and row.heartbeat_at is not None


def test_claim_takes_the_oldest_run_of_a_kind_it_serves(queue_engine):
    first_reward = queue_runs(queue_engine, 1, "reward")[0]
    generate = queue_runs(queue_engine, 1, "generate")[0]
    queue_runs(queue_engine, 1, "reward")
    assert claim(queue_engine, "gen-only", kinds=["generate"]).id == generate
    assert claim(queue_engine, "any").id == first_reward
    assert claim(queue_engine, "gen-only", kinds=["generate"]) is None


def test_stale_run_is_requeued_then_failed_after_max_attempts(queue_engine):
    run_id = queue_runs(queue_engine, 1)[0]
    for attempt in (1, 2, 3):
        run = claim(queue_engine, f"w{attempt}")
        assert (run.id, run.attempt) == (run_id, attempt)
        assert requeue_stale(queue_engine, 60) == []  # fresh heartbeat: left alone
        age_heartbeat(queue_engine, run_id, 120)
        expected = "failed" if attempt == 3 else "queued"
        assert requeue_stale(queue_engine, 60) == [(run_id, expected)]
    row = run_row(queue_engine, run_id)
    assert row.status == "failed" and row.attempts == 3 and row.worker is None
    assert "stopped heartbeating" in row.error and row.finished_at is not None
    assert row.log_tail.count("[requeue] worker") == 3


def test_stale_run_with_a_cancel_request_is_cancelled(queue_engine):
    run_id = queue_runs(queue_engine, 1)[0]
    claim(queue_engine, "w1")
    with queue_engine.begin() as conn:
        conn.execute(update(TrainingRun).values(cancel_requested=True))
    age_heartbeat(queue_engine, run_id, 120)
    assert requeue_stale(queue_engine, 60) == [(run_id, "cancelled")]


def test_lease_upserts_metrics_and_loses_its_writes_once_replaced(queue_engine):
    run_id = queue_runs(queue_engine, 1)[0]
    first = claim(queue_engine, "w1")
    lease = Lease(queue_engine, first, 60, threading.Event(), LogTail())
    lease.on_log(1, {"loss": 0.7}, None)
    lease.on_log(1, {"eval_accuracy": 0.5, "loss": 0.6}, None)  # a second log at one step
    lease.on_log(2, {"loss": float("nan")}, [{"prompt": "p", "completion": "<b>c</b>"}])
    lease.on_log(2, {"eval_loss": 0.5}, None)  # no samples this time: the earlier ones stay
    with Session(queue_engine) as session:
        rows = session.scalars(select(RunMetric).order_by(RunMetric.step)).all()
        assert [(m.step, m.values) for m in rows] == [
            (1, {"loss": 0.6, "eval_accuracy": 0.5}),
            (2, {"loss": None, "eval_loss": 0.5}),
        ]
        no_samples = select(func.count()).where(RunMetric.samples.is_(None))
        assert session.scalar(no_samples) == 1  # step 1: SQL NULL, not JSON null
        assert rows[1].samples == [{"prompt": "p", "completion": "<b>c</b>"}]
    assert lease.should_stop() is False

    age_heartbeat(queue_engine, run_id, 120)
    requeue_stale(queue_engine, 60)
    second = claim(queue_engine, "w2")
    assert second.attempt == 2 and "[requeue] worker w1" in second.log_tail
    with Session(queue_engine) as session:  # the new attempt starts with no metrics
        assert session.scalar(select(func.count()).select_from(RunMetric)) == 0
    lease.on_log(3, {"loss": 0.1}, None)  # the old lease writes nothing any more
    assert lease.should_stop() is True and lease.lost
    assert lease.finish("succeeded", artifact_uri="/nowhere") is False
    lease.heartbeat()
    row = run_row(queue_engine, run_id)
    assert (row.status, row.worker, row.artifact_uri) == ("running", "w2", None)
    with Session(queue_engine) as session:
        assert session.scalar(select(func.count()).select_from(RunMetric)) == 0


def test_cancel_request_stops_at_the_next_logging_step(queue_engine):
    queue_runs(queue_engine, 1)
    run = claim(queue_engine, "w1")
    lease = Lease(queue_engine, run, 60, threading.Event(), LogTail())
    assert lease.should_stop() is False
    with queue_engine.begin() as conn:
        conn.execute(update(TrainingRun).values(cancel_requested=True))
    assert lease.should_stop() is True
    with pytest.raises(ValueError, match="cannot become 'running'"):
        lease.finish("running")  # not a move of training.schema.TRANSITIONS
    assert lease.finish("cancelled") is True
    assert run_row(queue_engine, run.id).status == "cancelled"


def test_heartbeat_thread_keeps_the_run_fresh(queue_engine):
    run_id = queue_runs(queue_engine, 1)[0]
    run = claim(queue_engine, "w1")
    age_heartbeat(queue_engine, run_id, 120)
    tail = LogTail()
    tail.add("hello from the run")
    with Lease(queue_engine, run, 0.05, threading.Event(), tail):
        threading.Event().wait(0.3)
    assert requeue_stale(queue_engine, 60) == []
    assert "hello from the run" in run_row(queue_engine, run_id).log_tail

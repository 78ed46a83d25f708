"""The worker running real (tiny) training runs as child jobs: metrics by step, artifacts,
failure, cancel from the API mid-run, and a clean stop that queues the run again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from app.db.models import RunMetric
from app.main import create_app
from app.services.accounts import tokens, users
from app.services.runs import queue as runs
from app.settings import Settings
from tests.helpers.worker import SLOW_DPO, run_row, run_steps, training_export, wait_for
from tests.training.conftest import build_tiny_llama
from training.worker import Worker


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="module")
def world(databases, tmp_path_factory) -> Iterator[tuple[Engine, Settings]]:
    """A committed database and a DATA_DIR shared by the app and the workers."""
    url = databases.new()
    settings = Settings(
        database_url=url,
        data_dir=tmp_path_factory.mktemp("data"),
        environment="test",
        secret_key="test-secret-key-0123456789",
        worker_heartbeat_seconds=0.5,
    )
    engine = create_engine(url, pool_size=6)
    yield engine, settings
    engine.dispose()


@pytest.fixture(scope="module")
def export_id(world) -> int:
    engine, settings = world
    with Session(engine) as session:
        return training_export(session, settings.exports_dir)


def queue(world, **request) -> int:
    engine, settings = world
    with Session(engine) as session:
        return runs.create_run(session, settings, runs.RunRequest(**request)).id


def make_worker(world, name: str) -> Worker:
    engine, settings = world
    return Worker(
        engine,
        name=name,
        data_dir=settings.data_dir,
        heartbeat_seconds=0.5,
        stale_seconds=30,
        poll_seconds=0.1,
    )


def test_reward_run_streams_metrics_and_stores_its_artifact(world, export_id, tiny_model):
    run_id = queue(
        world, kind="reward", export_id=export_id, base_model=tiny_model, preset="tiny-cpu"
    )
    assert make_worker(world, "w-reward").run_forever(once=True) == 1
    done = run_row(world[0], run_id)
    assert (done.status, done.attempts, done.error) == ("succeeded", 1, None)
    run_dir = world[1].data_dir / "runs" / str(run_id)
    assert done.artifact_uri == str(run_dir)
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert run_steps(world[0], run_id) == [1, 2, 3, 4, 5]
    with Session(world[0]) as session:
        last = session.scalar(
            select(RunMetric).where(RunMetric.run_id == run_id, RunMetric.step == 5)
        )
    assert "loss" in last.values and "eval_accuracy" in last.values  # merged at one step
    assert "step 1: " in done.log_tail and "attempt 1 ended: succeeded" in done.log_tail
    assert done.finished_at >= done.started_at


def test_a_broken_export_fails_the_run_with_the_error(world, export_id, tiny_model):
    engine, settings = world
    run_id = queue(world, kind="dpo", export_id=export_id, base_model=tiny_model)
    pairs = settings.exports_dir / str(export_id) / "pairs.jsonl"
    original = pairs.read_bytes()
    pairs.write_bytes(original + b"\n")
    try:
        assert make_worker(world, "w-fail").run_forever(once=True) == 1
    finally:
        pairs.write_bytes(original)
    failed = run_row(world[0], run_id)
    assert failed.status == "failed" and "sha256" in failed.error
    assert failed.error.startswith("DataError") and "Traceback" in failed.log_tail
    assert failed.artifact_uri is None and failed.finished_at is not None


@pytest.fixture
def api(world) -> Iterator[tuple[TestClient, dict[str, str]]]:
    engine, settings = world
    with Session(engine) as session:
        name = f"admin-{time.monotonic_ns()}"
        users.create_user(session, name, "correct-horse-battery", "admin")
        headers = {"Authorization": f"Bearer {tokens.create_token(session, name)}"}
    with TestClient(create_app(settings)) as client:
        yield client, headers


def run_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run_forever, kwargs={"once": True})
    thread.start()
    return thread


def test_cancel_from_the_api_stops_a_running_run(world, export_id, tiny_model, api):
    client, headers = api
    run_id = queue(
        world,
        kind="dpo",
        export_id=export_id,
        base_model=tiny_model,
        preset="tiny-cpu",
        config=SLOW_DPO,
    )
    thread = run_in_thread(make_worker(world, "w-cancel"))
    # each run is a child job (`accelerate launch`): starting it under load takes a while
    wait_for(lambda: len(run_steps(world[0], run_id)) >= 2, 150)
    response = client.post(f"/api/v1/training-runs/{run_id}/cancel", headers=headers)
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    thread.join(120)
    assert not thread.is_alive(), "the worker did not finish the cancelled run"
    cancelled = run_row(world[0], run_id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert 2 <= len(run_steps(world[0], run_id)) < SLOW_DPO["max_steps"]
    detail = client.get(f"/api/v1/training-runs/{run_id}", headers=headers).json()
    assert detail["status"] == "cancelled" and detail["metrics"][0]["step"] == 1
    assert not (world[1].data_dir / "runs" / str(run_id) / "adapter").exists()


def test_a_stopping_worker_queues_its_run_again(world, export_id, tiny_model):
    run_id = queue(
        world,
        kind="dpo",
        export_id=export_id,
        base_model=tiny_model,
        preset="tiny-cpu",
        config=SLOW_DPO,
    )
    worker = make_worker(world, "w-stop")
    thread = run_in_thread(worker)
    wait_for(lambda: len(run_steps(world[0], run_id)) >= 1, 150)
    worker.stop()  # what SIGTERM/SIGINT do in `prefloop worker`
    thread.join(120)
    assert not thread.is_alive(), "the stopped worker did not return"
    requeued = run_row(world[0], run_id)
    assert (requeued.status, requeued.worker, requeued.attempts) == ("queued", None, 1)
    assert "attempt 1 ended: queued" in requeued.log_tail
    with Session(world[0]) as session:
        runs.cancel_run(session, run_id)

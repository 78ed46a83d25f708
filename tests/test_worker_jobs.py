"""Runs as child jobs: the worker launches `accelerate launch -m training job` with two gloo
processes (a CPU stand-in for `--gpus 0,1`), follows its metrics and log, and leaves no
training process behind when a run is cancelled or the worker itself is SIGKILLed."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from app.services.runs import queue as runs
from app.settings import Settings
from tests.helpers.worker import (
    SLOW_DPO,
    run_row,
    run_steps,
    training_export,
    wait_for,
    worker_env,
    worker_process,
)
from tests.training.conftest import build_tiny_llama
from training.jobs import JOB_FILE
from training.schema import FINAL
from training.worker import Worker

TWO = {"max_steps": 4, "logging_steps": 1, "eval_fraction": 0.0, "lora_dropout": 0.0}


@pytest.fixture(scope="module")
def world(databases, tmp_path_factory) -> Iterator[tuple[Engine, Settings, str, int]]:
    """A committed database, a DATA_DIR with one export, a tiny model."""
    url = databases.new()
    settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("data"))
    model = str(build_tiny_llama(tmp_path_factory.mktemp("tiny")))
    engine = create_engine(url, pool_size=6)
    with Session(engine) as session:
        export_id = training_export(session, settings.exports_dir)
    yield engine, settings, model, export_id
    engine.dispose()


def queue(world, config: dict, kind: str = "dpo") -> int:
    engine, settings, model, export_id = world
    request = runs.RunRequest(
        kind=kind, export_id=export_id, base_model=model, preset="tiny-cpu", config=config
    )
    with Session(engine) as session:
        return runs.create_run(session, settings, request).id


def worker(world, name: str, processes: int = 2) -> Worker:
    engine, settings, _, _ = world
    return Worker(
        engine,
        name=name,
        data_dir=settings.data_dir,
        heartbeat_seconds=0.5,
        stale_seconds=30,
        poll_seconds=0.1,
        devices=[],
        processes=processes,
        grace_seconds=5,
    )


def training_processes(spec_marker: str) -> list[psutil.Process]:
    """Every live process whose command line names this run's job file."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if spec_marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def test_a_run_trains_with_two_processes_and_ends_with_one_adapter(world):
    run_id = queue(world, TWO)
    assert worker(world, "w-two").run_forever(once=True) == 1
    done = run_row(world[0], run_id)
    assert (done.status, done.error) == ("succeeded", None)
    run_dir = world[1].data_dir / "runs" / str(run_id)
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    ranks = [json.loads(p.read_text()) for p in sorted((run_dir / "ranks").glob("*.json"))]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["sha256"] == ranks[1]["sha256"]  # byte-identical adapters
    assert run_steps(world[0], run_id) == [1, 2, 3, 4]
    assert "launching 2 process(es) on CPU (gloo), ddp" in done.log_tail
    assert "adapter identical on 2 process(es)" in done.log_tail
    assert "step 1: " in done.log_tail
    assert training_processes(str(run_dir / JOB_FILE)) == []


def test_cancel_stops_both_processes(world):
    run_id = queue(world, {**SLOW_DPO, "lora_dropout": 0.0})
    thread = threading.Thread(target=worker(world, "w-cancel").run_forever, args=(True,))
    thread.start()
    spec = str(world[1].data_dir / "runs" / str(run_id) / JOB_FILE)
    wait_for(lambda: len(run_steps(world[0], run_id)) >= 2, 120)
    assert len(training_processes(spec)) >= 3  # the launcher and two training processes
    with Session(world[0]) as session:
        runs.cancel_run(session, run_id)
    thread.join(60)
    cancelled = run_row(world[0], run_id)
    assert cancelled.status == "cancelled" and cancelled.error is None
    assert 2 <= len(run_steps(world[0], run_id)) < SLOW_DPO["max_steps"]
    assert training_processes(spec) == []


@pytest.mark.slow  # ~1 min idle, 3 under load; tests/test_launch.py checks the mechanism fast
@pytest.mark.timeout(400)
def test_a_sigkilled_worker_leaves_no_training_process_and_the_run_finishes_elsewhere(
    world, tmp_path
):
    engine, settings, _, _ = world
    run_id = queue(world, {**SLOW_DPO, "max_steps": 6, "lora_dropout": 0.0})
    spec = str(settings.data_dir / "runs" / str(run_id) / JOB_FILE)
    env = worker_env(engine.url.render_as_string(hide_password=False), settings.data_dir)
    env["WORKER_STALE_SECONDS"] = "3"
    with worker_process("A", env, tmp_path / "a.log", "--processes", "2") as a:
        wait_for(lambda: len(run_steps(world[0], run_id)) >= 2, 150)
        children = psutil.Process(a.pid).children(recursive=True)
        assert len(training_processes(spec)) >= 3
        a.send_signal(signal.SIGKILL)
        a.wait(10)
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [] and training_processes(spec) == []  # parent-death signal
    time.sleep(3)  # the heartbeat goes stale
    with worker_process("B", env, tmp_path / "b.log", "--processes", "2"):
        wait_for(lambda: run_row(world[0], run_id).status in FINAL, 200)
    done = run_row(world[0], run_id)
    assert (done.status, done.attempts, done.worker) == ("succeeded", 2, "B"), done.error
    assert "[requeue] worker A stopped heartbeating" in done.log_tail
    assert run_steps(world[0], run_id) == [1, 2, 3, 4, 5, 6]  # every step once
    assert training_processes(spec) == []


def test_a_worker_registers_its_gpus_while_it_serves(world):
    from training.devices import Device
    from training.schema import workers

    engine = world[0]
    gpus = [Device(0, "NVIDIA H100", 80 * 10**9), Device(1, "NVIDIA H100", 80 * 10**9)]
    seen: list = []
    w = worker(world, "gpu-box")
    w.devices, w.processes = gpus, 2
    original = w.next_run

    def look_then_claim():
        with engine.connect() as conn:
            seen.extend(conn.execute(workers.select()).mappings().all())
        return original()

    w.next_run = look_then_claim
    assert w.run_forever(once=True) == 0  # nothing queued
    [row] = seen
    assert (row["name"], row["processes"], len(row["devices"])) == ("gpu-box", 2, 2)
    assert row["devices"][1] == {"index": 1, "name": "NVIDIA H100", "memory_bytes": 80 * 10**9}
    with engine.connect() as conn:  # a clean stop removes the row
        assert conn.execute(workers.select()).all() == []


def test_nvidia_smi_rows_narrowed_to_the_visible_devices():
    from training.devices import narrow, parse_nvidia_smi

    found = parse_nvidia_smi("0, NVIDIA A100-SXM4-80GB, 81920\n1, NVIDIA A100-SXM4-80GB, 81920\n")
    assert [d.memory_bytes for d in found] == [81920 * 1024**2] * 2
    assert [d.index for d in narrow(found, "1")] == [1]
    assert narrow(found, None) == found and narrow(found, "") == []
    assert [d.index for d in narrow(found, "1,7,0")] == [1]  # CUDA stops at an invalid id

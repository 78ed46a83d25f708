"""Distributed strategies on CPU: two gloo processes launched as the worker launches them
(``training.launch``) train byte-identical adapters on both ranks, with the loss curve of one
process on the same global batch. FSDP and ZeRO need CUDA (accelerate applies them only on
GPUs): on CPU a run asking for them is refused by name, never silently run as ddp."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import training
from tests.training.conftest import REPO, build_tiny_llama, marker_rows, write_export
from training.config_base import ConfigError
from training.jobs import JOB_FILE, read_ranks
from training.launch import launch_argv, launch_env
from training.runtime import METRICS_FILE

STEPS = 4
BASE = {
    "max_steps": STEPS,
    "logging_steps": 1,
    "eval_fraction": 0.0,
    "lora_dropout": 0.0,  # no dropout: both processes see the same function
    "precision": "fp32",
    "max_length": 128,
    "lora_r": 4,
    "lora_alpha": 8,
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("dist")
    model = build_tiny_llama(folder / "tiny")
    export = write_export(folder / "export", marker_rows(8, chat=True))
    return model, export


def losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    return [row["loss"] for row in rows if row.get("loss") is not None]


def launch(kind: str, model: Path, export: Path, out: Path, processes: int) -> None:
    """The worker's launch of one job, without the worker."""
    config = {**BASE, "per_device_batch_size": 4 // processes}
    spec = {
        "kind": kind,
        "model": str(model),
        "out": str(out),
        "config": config,
        "inputs": {"data": str(export)},
    }
    out.mkdir(parents=True)
    (out / JOB_FILE).write_text(json.dumps(spec))
    env = {**launch_env(cuda=False), "PYTHONPATH": str(REPO)}
    argv = launch_argv(out / JOB_FILE, processes, "ddp", cuda=False)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow  # 30 s idle, 100 s under load (tests/test_worker_jobs.py checks the digests)
@pytest.mark.parametrize("kind", ["dpo", "reward"])
def test_two_ddp_processes_train_identical_adapters_on_one_process_curve(kind, inputs, tmp_path):
    model, export = inputs
    launch(kind, model, export, tmp_path / "two", processes=2)
    ranks = read_ranks(tmp_path / "two")
    assert [(r["rank"], r["world_size"], r["backend"]) for r in ranks] == [
        (0, 2, "gloo"),
        (1, 2, "gloo"),
    ]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    one = tmp_path / "one"
    training.run(
        kind, data=export, model=str(model), out=one, config={**BASE, "per_device_batch_size": 4}
    )
    two_curve, one_curve = losses(tmp_path / "two"), losses(one)
    assert len(two_curve) == len(one_curve) == STEPS
    assert two_curve == pytest.approx(one_curve, rel=1e-4, abs=1e-6)  # same global batch
    assert one_curve[-1] != one_curve[0]  # the curve moves: the comparison says something
    assert (tmp_path / "two" / "adapter" / "adapter_config.json").is_file()
    assert not (tmp_path / "two" / "error.json").exists()


@pytest.mark.parametrize("strategy", ["zero2", "zero3", "fsdp"])
def test_sharded_strategies_are_refused_where_they_cannot_apply(
    strategy, inputs, tmp_path, monkeypatch
):
    model, export = inputs
    config = {**BASE, "distributed": strategy}
    with pytest.raises(ConfigError, match="needs `accelerate launch --config_file") as exc:
        training.run("dpo", data=export, model=str(model), out=tmp_path / "a", config=config)
    assert exc.value.field == "distributed"
    flag = "ACCELERATE_USE_FSDP" if strategy == "fsdp" else "ACCELERATE_USE_DEEPSPEED"
    monkeypatch.setenv(flag, "true")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs CUDA GPUs"):
        training.run("reward", data=export, model=str(model), out=tmp_path / "b", config=config)


def test_ppo_takes_ddp_only():
    with pytest.raises(ConfigError, match="must be 'ddp' for PPO"):
        training.build_config("ppo", overrides={"distributed": "fsdp"})
    assert training.build_config("dpo", overrides={"distributed": "zero3"}).distributed == "zero3"
    with pytest.raises(ConfigError, match="num_processes must be >= 1"):
        training.build_config("reward", overrides={"num_processes": 0})

"""training.launch without training: the accelerate command line, the strategies' config
files, and process trees that stop (cancel) or die with the worker (parent-death signal).

The stand-in job mimics torchrun: the launcher starts a "rank" in a session of its own (so
killing the launcher's process group does not reach it) that sets its parent-death signal
as ``training.jobs.run_job`` does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import ROOT
from training.jobs import failure_message, process_count
from training.launch import (
    STRATEGIES,
    ChildJob,
    Follower,
    accelerate_config,
    launch_argv,
    launch_env,
)
from training.queue import ClaimedRun

RANK = textwrap.dedent(
    """
    import os, time
    from training.launch import LAUNCHER_PID_ENV, set_parent_death_signal
    set_parent_death_signal(int(os.environ[LAUNCHER_PID_ENV]))
    print("rank", os.getpid(), flush=True)
    time.sleep(120)
    """
)
LAUNCHER = textwrap.dedent(
    f"""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a launcher slow to stop: SIGKILL ends it
    subprocess.Popen([sys.executable, "-c", {RANK!r}], start_new_session=True)
    time.sleep(120)
    """
)


def stand_in(tmp_path: Path) -> ChildJob:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return ChildJob([sys.executable, "-c", LAUNCHER], env, tmp_path / "train.log")


def wait_for_rank(job: ChildJob) -> None:
    deadline = time.monotonic() + 30
    while "rank" not in job.log_path.read_text():
        assert time.monotonic() < deadline, job.log_path.read_text()
        job.poll()
        time.sleep(0.05)
    job.poll()


def test_stop_terminates_then_kills_every_process_of_the_job(tmp_path):
    job = stand_in(tmp_path)
    job.start()
    wait_for_rank(job)
    processes = job.alive()
    assert len(processes) == 2  # the launcher (guard exec'd in place) and its rank
    started = time.monotonic()
    job.stop(grace=1.0)
    assert job.alive() == [] and time.monotonic() - started < 10
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in processes)


WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tests.test_launch import stand_in
    job = stand_in(Path(sys.argv[2]))
    job.start()
    print(job.pid, flush=True)
    time.sleep(120)
    """
)


def test_a_sigkilled_worker_takes_the_launcher_and_its_ranks_with_it(tmp_path):
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(ROOT), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    launcher = psutil.Process(int(worker.stdout.readline()))
    deadline = time.monotonic() + 30
    while "rank" not in (tmp_path / "train.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tree = [launcher, *launcher.children(recursive=True)]
    assert len(tree) == 2
    worker.kill()
    worker.wait(10)
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []


def test_the_accelerate_command_line_of_each_case():
    spec = Path("/data/runs/7/job.json")
    one_cpu = launch_argv(spec, 1, "ddp", cuda=False)
    assert one_cpu[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--cpu" in one_cpu and one_cpu[-4:] == ["-m", "training", "job", str(spec)]
    two_cpu = launch_argv(spec, 2, "fsdp", cuda=False, port=29999)
    assert "--cpu" not in two_cpu and two_cpu[two_cpu.index("--num_processes") + 1] == "2"
    assert two_cpu[two_cpu.index("--config_file") + 1] == str(accelerate_config("fsdp"))
    assert two_cpu[two_cpu.index("--main_process_port") + 1] == "29999"
    assert launch_env(cuda=False, base={})["ACCELERATE_USE_CPU"] == "true"
    assert "ACCELERATE_USE_CPU" not in launch_env(cuda=True, base={})
    with pytest.raises(ValueError, match="distributed must be one of"):
        accelerate_config("zero1")


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [("ddp", "MULTI_GPU"), ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED"), ("fsdp", "FSDP")],
)
def test_each_strategy_has_an_accelerate_config_file(strategy, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    assert strategy in STRATEGIES
    config = yaml.safe_load(accelerate_config(strategy).read_text())
    assert config["distributed_type"] == kind
    if kind == "DEEPSPEED":
        assert config["deepspeed_config"]["zero_stage"] == int(strategy[-1])
    loaded = ClusterConfig.from_yaml_file(accelerate_config(strategy))  # accelerate reads it
    assert loaded.distributed_type.value == kind


def claimed(kind: str, config: dict) -> ClaimedRun:
    return ClaimedRun(1, kind, config, 1, "m", None, 1, "w")


def test_process_count_is_the_workers_or_the_runs_smaller_number():
    assert process_count(claimed("dpo", {}), 4) == 4
    assert process_count(claimed("dpo", {"num_processes": 2}), 4) == 2
    assert process_count(claimed("dpo", {"num_processes": 8}), 4) == 4
    assert process_count(claimed("generate", {}), 4) == 1


def test_failure_message_says_out_of_gpu_memory_plainly(tmp_path):
    error = {
        "type": "OutOfMemoryError",
        "message": "CUDA out of memory. Tried to allocate 2.00 GiB",
        "out_of_memory": True,
        "rank": 1,
    }
    (tmp_path / "error.json").write_text(json.dumps(error))
    message = failure_message(tmp_path, 1, ["line a", "Traceback ...", "torch.OutOfMemoryError"])
    assert message.startswith("out of GPU memory (rank 1): OutOfMemoryError: CUDA out of")
    assert message.endswith("line a\nTraceback ...\ntorch.OutOfMemoryError")
    (tmp_path / "error.json").unlink()
    assert failure_message(tmp_path, -9, []).startswith("the training processes were killed")
    assert failure_message(tmp_path, 1, ["x"]).startswith("the training processes exited with")


def test_follower_returns_only_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    follower = Follower(path)
    assert follower.lines() == []
    path.write_text('{"step": 1}\n{"st')
    assert follower.lines() == ['{"step": 1}']
    with path.open("a") as handle:
        handle.write('ep": 2}\nLoading:  10%\rLoading: 100%\r\n')
    assert follower.lines() == ['{"step": 2}', "Loading: 100%"]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("ddp", {"multi_gpu": True, "use_fsdp": False, "use_deepspeed": False}),
        ("fsdp", {"use_fsdp": True, "fsdp_version": 2, "use_deepspeed": False}),
        ("zero2", {"use_deepspeed": True, "zero_stage": 2, "use_fsdp": False}),
        ("zero3", {"use_deepspeed": True, "zero_stage": 3, "zero3_init_flag": True}),
    ],
)
def test_accelerate_reads_our_command_line_as_the_strategy(strategy, expected):
    """What `accelerate launch` makes of the worker's command line (its own parser), on a
    GPU worker: the launcher and plugin each strategy selects."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    argv = launch_argv(Path("/data/runs/7/job.json"), 4, strategy, cuda=True, port=29511)
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv[3:]))
    assert {name: getattr(args, name) for name in expected} == expected
    assert (args.num_processes, args.num_machines, args.module) == (4, 1, True)
    if strategy == "fsdp":
        env = prepare_multi_gpu_env(args)
        assert (env["ACCELERATE_USE_FSDP"], env["FSDP_VERSION"]) == ("true", "2")

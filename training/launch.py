"""Launching a run as a child job: ``accelerate launch`` of ``python -m training job SPEC``.

The worker starts one child process group per run::

    python -m training.launch WORKER_PID -- python -m accelerate.commands.launch \\
        --config_file training/accelerate/<strategy>.yaml --num_processes N \\
        --main_process_port P -m training job DATA_DIR/runs/<id>/job.json

- ``training.launch`` (this module as a program) is a guard: it asks Linux to SIGKILL it when
  the worker dies (``prctl(PR_SET_PDEATHSIG)``), checks the worker is still there, then execs
  the launcher in place (same pid). Each training process (``training.jobs.run_job``) does the
  same towards the launcher, whose pid the guard leaves in ``PREFLOOP_LAUNCHER_PID``: a worker
  killed with SIGKILL takes its launcher and every training process with it.
- The group is a new session (``start_new_session``): cancel sends SIGTERM to the group and to
  every process it spawned, then SIGKILL after a grace period (``ChildJob.stop``).
- On CUDA the strategy's accelerate config file runs N processes, one per GPU. Without CUDA,
  one process runs with ``--cpu``; N > 1 processes run through the same torchrun path with
  ``ACCELERATE_USE_CPU=true`` so every process uses the gloo backend (accelerate's ``--cpu``
  alone always starts a single process).

Only the standard library (and psutil) is imported here: the worker never imports torch.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

import psutil

from training.config_base import Distributed

ACCELERATE_DIR = Path(__file__).resolve().parent / "accelerate"
STRATEGIES: tuple[str, ...] = typing.get_args(Distributed)
"""The ``distributed`` choices; each has ``training/accelerate/<name>.yaml``."""
LAUNCHER_PID_ENV = "PREFLOOP_LAUNCHER_PID"
PR_SET_PDEATHSIG = 1


def accelerate_config(strategy: str) -> Path:
    """The accelerate config file kept in ``training/accelerate/`` for ``strategy``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"distributed must be one of {list(STRATEGIES)}, got {strategy!r}")
    return ACCELERATE_DIR / f"{strategy}.yaml"


def free_port() -> int:
    """A TCP port free on this machine now (torchrun's rendezvous of one machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_argv(
    spec: Path, processes: int, strategy: str, cuda: bool, port: int | None = None
) -> list[str]:
    """The ``accelerate launch`` command line of one run (see the module docstring)."""
    argv = [sys.executable, "-m", "accelerate.commands.launch"]
    argv += ["--config_file", str(accelerate_config(strategy))]
    argv += ["--num_processes", str(processes), "--num_machines", "1"]
    if not cuda and processes == 1:
        argv.append("--cpu")
    else:
        argv += ["--main_process_port", str(port or free_port())]
    return [*argv, "-m", "training", "job", str(spec)]


def launch_env(cuda: bool, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the worker's, unbuffered output, CPU processes on gloo."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not cuda:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def set_parent_death_signal(expected_parent: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies. If the parent is
    already gone (we were re-parented before the call), exit at once."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(70)


class ChildJob:
    """One run's process group: start, watch, stop without leaving a process behind."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, Path(log_path)
        self.process: subprocess.Popen | None = None
        self.known: dict[int, psutil.Process] = {}

    def start(self) -> None:
        guard = [sys.executable, "-m", "training.launch", str(os.getpid()), "--"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                guard + self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code once the launcher ended; remembers every process it spawned."""
        assert self.process is not None, "not started"
        code = self.process.poll()
        if code is None:
            self._remember()
        return code

    def _remember(self) -> None:
        try:
            for child in psutil.Process(self.pid).children(recursive=True):
                self.known.setdefault(child.pid, child)
        except psutil.Error:
            pass

    def alive(self) -> list[psutil.Process]:
        """Processes of this job still running (psutil checks pid reuse)."""
        procs = list(self.known.values())
        if self.process is not None and self.process.poll() is None:
            procs.append(psutil.Process(self.pid))
        return [p for p in procs if _running(p)]

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for proc in self.alive():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM to the group and every process it spawned; SIGKILL to what is left after
        ``grace`` seconds. Returns the launcher's exit code."""
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self._remember()
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.reap()
        return self.process.wait()

    def reap(self) -> None:
        """SIGKILL whatever of the job is still running (after it ended or was stopped)."""
        if self.alive():
            self._signal(signal.SIGKILL)
            psutil.wait_procs(self.alive(), timeout=5)
        if self.process is not None:
            self.process.wait()


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Follower:
    """Reads the complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = Path(path), 0, b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        *complete, self.partial = data.split(b"\n")
        # a progress bar redraws its line with carriage returns: keep what it shows last
        return [
            line.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1] for line in complete
        ]


def _guard(argv: list[str]) -> None:
    """``python -m training.launch WORKER_PID -- COMMAND...``: die with the worker, then exec."""
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m training.launch WORKER_PID -- COMMAND [ARGS...]")
    set_parent_death_signal(int(argv[0]))
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())
    os.execvpe(argv[2], argv[2:], os.environ)


if __name__ == "__main__":
    _guard(sys.argv[1:])

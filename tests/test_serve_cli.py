"""`prefloop serve` on the embedded PostgreSQL, as a user runs it: create a user, serve,
`kill -9` the server, serve again — the user is still there — and stop with SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app import __version__
from app.cli import app as cli_app

BIN = Path(sys.executable).parent / "prefloop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), LOG_LEVEL="warning")
    return env


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/login", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def run(args: list[str], env: dict[str, str], stdin: str = "") -> str:
    done = subprocess.run(
        [str(BIN), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def workdir():
    """Not pytest's tmp_path: a new pytest session makes that tree 0700, locking out the
    embedded server's system user while it runs."""
    path = Path(tempfile.mkdtemp(prefix="prefloop-serve-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(240)
def test_serve_survives_kill_9_and_stops_on_sigterm(workdir):
    tmp_path = workdir
    port = free_port()
    env = cli_env(tmp_path / "data", port)
    url = f"http://127.0.0.1:{port}"
    run(["user", "create", "root", "--role", "admin", "--password-stdin"], env, "a-long-password\n")

    first = subprocess.Popen([str(BIN), "serve"], env=env, start_new_session=True)
    try:
        wait_ready(url, first)
    finally:
        first.kill()  # SIGKILL: no cleanup runs, postgres is left behind
        first.wait()

    second = subprocess.Popen([str(BIN), "serve"], env=env)
    try:
        wait_ready(url, second)
        token = run(["token", "create", "root"], env).strip()
        me = httpx.get(url + "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == "root"
        second.send_signal(signal.SIGTERM)
        code = second.wait(timeout=60)
        assert code in (0, 143), f"serve exited with {code}"
    finally:
        if second.poll() is None:
            second.kill()
    pidfile = tmp_path / "data" / "postgres" / "postmaster.pid"
    deadline = time.monotonic() + 30
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pidfile.exists(), "the embedded PostgreSQL was not stopped on SIGTERM"


def test_version_and_serve_flags_are_answered_before_anything_starts():
    version = CliRunner().invoke(cli_app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"prefloop {__version__}"
    for flag, value in (("--port", "0"), ("--port", "70000"), ("--workers", "0")):
        refused = CliRunner().invoke(cli_app, ["serve", flag, value])
        assert refused.exit_code == 2 and flag in refused.output, refused.output

"""A real server in a subprocess, for tests (and benches) that need real HTTP, real
concurrency and committed data: `start_server(database_url)` and the `live_server`
fixture. Import the fixture into a test module (or a conftest) to use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "live-test-secret-key-0123456789"
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base ``url``, the ``database_url`` it serves and its ``pid``."""

    url: str
    database_url: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/login", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def start_server(
    database_url: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    cpus: str | None = None,
) -> Iterator[LiveServer]:
    """Run uvicorn on a free port against ``database_url`` (already migrated) until the
    block ends. ``env`` adds settings (e.g. ``DB_POOL_SIZE``); ``cpus`` (a ``taskset -c``
    list such as ``"0"``) pins the server to those cores."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="prefloop-live-") as tmp:
        log = Path(tmp) / "server.log"
        child_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "ENVIRONMENT": "test",
            "DATA_DIR": str(Path(tmp) / "data"),
            "LOG_LEVEL": "warning",
            **(env or {}),
        }
        pinning = ["taskset", "-c", cpus] if cpus else []  # taskset execs: same pid
        command = [
            *pinning,
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_until_ready(process, url, log)
            yield LiveServer(url=url, database_url=database_url, pid=process.pid)
        finally:
            _stop(process)


@pytest.fixture
def live_server(databases) -> Iterator[LiveServer]:
    """A server on a fresh migrated database (see tests/conftest.py `databases`)."""
    with start_server(databases.new()) as server:
        yield server

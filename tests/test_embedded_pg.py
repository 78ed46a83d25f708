"""The embedded PostgreSQL lifecycle, against real server processes (no mocks).

Each failure mode listed in ``app/db/embedded.py`` is produced for real: users killed by
SIGKILL or SIGTERM, a zombie postmaster, a ``postmaster.pid`` naming an unrelated process,
two processes starting a fresh folder at once. Other processes run
``tests/helpers/hold_server.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.db.embedded import SYSTEM_USER, EmbeddedPostgres
from app.db.embedded_state import PostmasterRecord, is_live_postgres
from tests.helpers.hold_server import insert_label

ROOT = Path(__file__).resolve().parents[1]
HELPER = "tests.helpers.hold_server"

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform != "linux", reason="exercises Linux process semantics"),
]


class Holder:
    """A helper process holding the embedded server (see hold_server.py for the modes)."""

    def __init__(self, data_dir: Path, mode: str, label: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", HELPER, str(data_dir), mode, label],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ready_url(self) -> str:
        """Wait for the helper's ``READY <url>`` line and return the URL."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("READY "), f"helper failed (exit {self.proc.poll()}): {line!r}"
        return line.split(" ", 1)[1].strip()

    def signal_and_wait(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=30)


def _new_folder(prefix: str) -> Path:
    """A new folder in the system temp folder.

    Not under ``tmp_path``: as root the server runs as another user that must traverse every
    parent folder, and each new pytest session (another one may start at any time) resets
    ``/tmp/pytest-of-<user>`` to mode 0700.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="module")
def initialized_pgdata() -> Iterator[Path]:
    """A stopped, initialized database cluster: initdb is the slow part, so it runs once."""
    root = _new_folder("prefloop-embedded-template-")
    with EmbeddedPostgres(root, database="postgres"):  # "postgres" exists: nothing created
        pass
    yield root / "postgres"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    """An app data folder with no database yet; servers left by a failing test are killed."""
    path = _new_folder("prefloop-embedded-test-") / "data"
    yield path
    pgdata = path.resolve() / "postgres"
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "postgres" and is_live_postgres(proc.pid, pgdata):
            proc.kill()
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
def data_dir(fresh_data_dir: Path, initialized_pgdata: Path) -> Path:
    """An app data folder holding a copy (owners included) of the initialized cluster."""
    fresh_data_dir.mkdir()
    copy = ["cp", "-a", str(initialized_pgdata), str(fresh_data_dir / "postgres")]
    subprocess.run(copy, check=True)
    return fresh_data_dir


@pytest.fixture
def spawn(fresh_data_dir: Path) -> Iterator[Callable[[str, str], Holder]]:
    """Start helper processes on the test's data folder; they are killed after the test."""
    started: list[Holder] = []

    def _spawn(mode: str, label: str) -> Holder:
        holder = Holder(fresh_data_dir, mode, label)
        started.append(holder)
        return holder

    yield _spawn
    for holder in started:
        if holder.proc.poll() is None:
            holder.proc.kill()
            holder.proc.wait()


def postmaster_pid(data_dir: Path) -> int:
    record = PostmasterRecord.read(data_dir.resolve() / "postgres")
    assert record is not None and record.pid is not None, "no postmaster.pid"
    return record.pid


def server_running(data_dir: Path, pid: int) -> bool:
    return is_live_postgres(pid, data_dir.resolve() / "postgres")


def handle_pids(data_dir: Path) -> list[int]:
    path = data_dir / "postgres" / ".handle_pids.json"
    return sorted(json.loads(path.read_text())) if path.exists() else []


def labels(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT label FROM notes")).scalars())
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_start_creates_database_and_data_survives_restart(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    assert url.startswith("postgresql+psycopg://postgres@/prefloop?host=%2F")
    assert server.start() == url == server.url
    insert_label(url, "kept")
    first = postmaster_pid(data_dir)

    server.stop()
    server.stop()  # idempotent

    assert not server_running(data_dir, first)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert handle_pids(data_dir) == []
    with EmbeddedPostgres(data_dir) as again:
        assert labels(again.url) == ["kept"]
    with pytest.raises(RuntimeError, match="not started"):
        _ = again.url


def test_objects_in_one_process_share_one_server(data_dir: Path) -> None:
    first, second = EmbeddedPostgres(data_dir), EmbeddedPostgres(data_dir, database="other")
    first.start()
    other_url = second.start()
    pid = postmaster_pid(data_dir)

    first.stop()
    assert server_running(data_dir, pid)
    assert other_url.split("?")[0].endswith("/other")
    with create_engine(other_url, poolclass=NullPool).connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar() == "other"

    second.stop()
    assert not server_running(data_dir, pid)


@pytest.mark.parametrize("bad", ["", "x" * 64, "a\x00b"])
def test_bad_database_name_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValueError, match="^database: "):
        EmbeddedPostgres(Path("unused"), database=bad)


def test_start_after_user_was_sigkilled_reuses_server_and_drops_dead_pid(
    data_dir: Path, spawn: Callable[[str, str], Holder]
) -> None:
    holder = spawn("hold", "from-killed")
    holder.ready_url()
    pid = postmaster_pid(data_dir)
    assert holder.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    assert server_running(data_dir, pid)
    assert handle_pids(data_dir) == [holder.pid]

    server = EmbeddedPostgres(data_dir)
    url = server.start()

    assert postmaster_pid(data_dir) == pid  # reused, not restarted
    assert handle_pids(data_dir) == [os.getpid()]
    assert labels(url) == ["from-killed"]
    server.stop()
    assert not server_running(data_dir, pid)


def test_server_stays_up_while_another_process_uses_it(
    data_dir: Path, spawn: Callable[[str, str], Holder]
) -> None:
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    pid = postmaster_pid(data_dir)

    holder = spawn("release", "from-helper")
    assert holder.ready_url() == url
    assert holder.proc.wait(timeout=30) == 0

    assert server_running(data_dir, pid)
    assert handle_pids(data_dir) == [os.getpid()]
    assert labels(url) == ["from-helper"]
    server.stop()
    assert not server_running(data_dir, pid)


def test_sigterm_with_handler_releases_and_stops_server(
    data_dir: Path, spawn: Callable[[str, str], Holder]
) -> None:
    holder = spawn("sigterm", "x")
    holder.ready_url()
    pid = postmaster_pid(data_dir)

    assert holder.signal_and_wait(signal.SIGTERM) == 128 + signal.SIGTERM

    assert not server_running(data_dir, pid)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert handle_pids(data_dir) == []


def test_zombie_postmaster_is_detected_and_replaced(
    data_dir: Path, spawn: Callable[[str, str], Holder]
) -> None:
    holder = spawn("subreaper", "before-crash")
    holder.ready_url()
    crashed = postmaster_pid(data_dir)
    assert psutil.Process(crashed).ppid() == holder.pid
    os.kill(crashed, signal.SIGKILL)
    assert wait_for(lambda: psutil.Process(crashed).status() == psutil.STATUS_ZOMBIE)

    server = EmbeddedPostgres(data_dir)
    url = server.start()

    assert psutil.Process(crashed).status() == psutil.STATUS_ZOMBIE  # still there, not ours
    restarted = postmaster_pid(data_dir)
    assert restarted != crashed and server_running(data_dir, restarted)
    assert labels(url) == ["before-crash"]  # crash recovery kept the committed row
    holder.signal_and_wait(signal.SIGKILL)
    server.stop()  # the helper is dead, so this is the last user
    assert not server_running(data_dir, restarted)


def test_stale_pid_file_naming_an_unrelated_process(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    insert_label(server.start(), "kept")
    pgdata = data_dir / "postgres"
    server_files = [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]
    stale = {path: path.read_text() for path in server_files}
    assert len(stale) == 2
    server.stop()
    # Owned by the server's user, so PostgreSQL itself would see that PID alive and refuse.
    unrelated = subprocess.Popen(["sleep", "120"], user=SYSTEM_USER if os.geteuid() == 0 else None)
    try:
        for path, content in stale.items():  # as left by a power cut, the PID now recycled
            path.write_text("\n".join([str(unrelated.pid), *content.splitlines()[1:]]) + "\n")

        url = server.start()

        assert labels(url) == ["kept"]
        assert postmaster_pid(data_dir) != unrelated.pid
        server.stop()
        assert unrelated.poll() is None  # never signalled
        assert psutil.Process(unrelated.pid).status() != psutil.STATUS_ZOMBIE
    finally:
        unrelated.kill()
        unrelated.wait()


def test_two_processes_starting_a_fresh_folder(
    fresh_data_dir: Path, spawn: Callable[[str, str], Holder]
) -> None:
    data_dir = fresh_data_dir
    holders = [spawn("sigterm", "one"), spawn("sigterm", "two")]
    urls = {holder.ready_url() for holder in holders}

    assert len(urls) == 1
    url = urls.pop()
    assert labels(url) == ["one", "two"]
    with create_engine(url, poolclass=NullPool).connect() as conn:
        count = "SELECT count(*) FROM pg_database WHERE datname = 'prefloop'"
        assert conn.execute(text(count)).scalar() == 1
    assert handle_pids(data_dir) == sorted(holder.pid for holder in holders)
    pid = postmaster_pid(data_dir)

    assert holders[0].signal_and_wait(signal.SIGTERM) == 128 + signal.SIGTERM
    assert server_running(data_dir, pid)
    assert holders[1].signal_and_wait(signal.SIGTERM) == 128 + signal.SIGTERM
    assert not server_running(data_dir, pid)

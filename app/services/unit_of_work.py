"""The database session one request or one command works in.

Web handlers and the CLI open one with :func:`session_scope` and hand it to the service
functions they call; the services commit or roll back (see ``app.services``), and the
scope only closes it, whatever happened. ``DbSession`` is the type those callers name, so
that nothing above the services imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy.orm import Session

DbSession = Session


def session_scope(factory: Callable[[], Session]) -> Iterator[Session]:
    """Yield a new session from ``factory`` and close it at the end (a dependency body)."""
    session = factory()
    try:
        yield session
    finally:
        session.close()

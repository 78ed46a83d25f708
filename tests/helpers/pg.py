"""Test databases on a real PostgreSQL: TEST_DATABASE_URL's server when set, else an
embedded server in a temporary folder. Each test run gets its own migrated template
database, and every database a test needs is a cheap copy of that template."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db import migrate


@contextmanager
def server_url() -> Iterator[str]:
    """A URL of a maintenance database on a running server."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from app.db.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="prefloop-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp), database="postgres")
        try:
            yield server.start()
        finally:
            server.stop()


class DatabaseFactory:
    """Creates migrated databases on one server and drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.created: list[str] = []
        self.template = self._name("tpl")
        self._execute(f'CREATE DATABASE "{self.template}"')
        self.created.append(self.template)
        engine = create_engine(self.url_of(self.template))
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def _name(self, kind: str) -> str:
        return f"prefloop_{kind}_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def url_of(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def empty(self) -> str:
        """A fresh database with no tables at all; returns its URL."""
        name = self._name("empty")
        self._execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url_of(name)

    def new(self) -> str:
        """A fresh migrated database (a copy of the template); returns its URL."""
        name = self._name("db")
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return self.url_of(name)

    def drop_all(self) -> None:
        for name in reversed(self.created):
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()

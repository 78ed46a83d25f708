"""Apply Alembic migrations programmatically, under a PostgreSQL advisory lock so several
processes (web workers, background workers) can start at once."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from app.resources import resource_dir

MIGRATION_LOCK_KEY = 7_215_300_001  # arbitrary, constant: "prefloop migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config pointing at ``migrations/``; the connection travels via attributes
    (a unix-socket URL holds %-escapes that ConfigParser would try to interpolate)."""
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            command.upgrade(alembic_config(connection), revision)
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            connection.commit()


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), revision)
        connection.commit()

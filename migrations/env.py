"""Alembic environment: runs online against a connection handed over by the app, or
against DATABASE_URL when called from the `alembic` command line."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from app.db.models import Base

target_metadata = Base.metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL to run alembic from the command line.")
    with create_engine(url).connect() as conn:
        run_with(conn)
        conn.commit()


main()

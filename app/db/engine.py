"""Engine and session factory, built from a URL (never at import time)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    """A psycopg 3 engine. No pre-ping (a round trip on every request's hot path): a
    connection that finds the server gone is invalidated with the whole pool, so one
    request fails after a database restart and the next ones reconnect."""
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)

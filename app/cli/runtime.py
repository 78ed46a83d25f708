"""What every command that touches the database shares: settings, the database URL
(embedded PostgreSQL when DATABASE_URL is unset), migrations, a session factory, and
turning domain errors into a clear message and exit code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.domain.errors import DomainError
from app.settings import Settings


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment; ``overrides`` (command-line flags) win over it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            typer.echo(f"error: {field}: {err['msg']}", err=True)
        raise typer.Exit(2) from exc


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or an embedded PostgreSQL in DATA_DIR for as long as the block runs."""
    if settings.database_url:
        yield settings.database_url
        return
    from app.db.embedded import EmbeddedPostgres, install_sigterm_handler

    install_sigterm_handler()
    with EmbeddedPostgres(settings.data_dir) as server:
        url = server.url
        os.environ["DATABASE_URL"] = url  # for uvicorn workers and child processes
        yield url


@contextmanager
def open_db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A migrated database and a session factory."""
    with database_url(settings) as url:
        engine = make_engine(url, pool_size=2)
        try:
            migrate.upgrade(engine)
            yield make_sessionmaker(engine)
        finally:
            engine.dispose()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def domain_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print a DomainError (with each detail on its own line) and exit 1, no traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            for d in exc.details if isinstance(exc.details, list) else []:
                line = f"line {d.get('line')}: " if d.get("line") else ""
                typer.echo(f"  {line}{d.get('field')}: {d.get('message')}", err=True)
            raise typer.Exit(1) from exc

    return wrapper

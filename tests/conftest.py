"""Shared fixtures: a real PostgreSQL, a SAVEPOINT per test, an app bound to it, users."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session

from app.db.models import User
from app.main import create_app
from app.services.accounts import tokens, users
from app.settings import Settings
from tests.helpers.pg import DatabaseFactory, server_url

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def databases() -> Iterator[DatabaseFactory]:
    with server_url() as url:
        factory = DatabaseFactory(url)
        try:
            yield factory
        finally:
            factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    return databases.new()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One connection in an outer transaction that is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


def _savepoint_session(connection: Connection) -> Session:
    return Session(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A Session whose commits are SAVEPOINT releases inside the rolled-back transaction."""
    session = _savepoint_session(connection)
    yield session
    session.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        environment="test",
        secret_key="test-secret-key-0123456789",
    )


@pytest.fixture
def app(settings: Settings, connection: Connection):
    """The app, its requests' sessions inside the test's rolled-back transaction."""
    return create_app(settings, sessions=lambda: _savepoint_session(connection))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_user(db: Session) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(role: str = "labeler", username: str | None = None) -> User:
        name = username or f"{role}{next(counter)}"
        return users.create_user(db, name, PASSWORD, role)

    return make


@pytest.fixture
def token_for(db: Session) -> Callable[[User], dict[str, str]]:
    """Authorization headers for a user."""

    def headers(user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.create_token(db, user.username)}"}

    return headers


@pytest.fixture
def admin_headers(make_user, token_for) -> dict[str, str]:
    return token_for(make_user("admin", "admin"))

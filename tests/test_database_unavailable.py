"""A database that cannot be reached (restarting, crashed: bench/kill_durability.py kills it
under load) is a 503 with ``Retry-After`` in the app's error shape, not a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/prefloop?connect_timeout=2"


def test_an_unreachable_database_is_a_503_that_says_try_again(tmp_path):
    settings = Settings(
        database_url=UNREACHABLE,
        data_dir=tmp_path / "data",
        environment="test",
        secret_key="test-secret-key-0123456789",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = client.get("/api/v1/users/me", headers={"Authorization": "Bearer pfl_unknown"})
    assert api.status_code == 503 and api.headers["retry-after"] == "1"
    assert api.json()["error"]["code"] == "database_unavailable"
    assert "try again" in api.json()["error"]["message"]

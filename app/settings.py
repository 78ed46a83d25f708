"""Application settings, read from the environment (prefix-free names, as in the README).

One class, passed into ``create_app(settings)``; nothing reads the environment at import time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


class Environment(StrEnum):
    """Where Prefloop runs: development allows the built-in secret key, nothing else does."""

    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    """Every setting Prefloop reads. The README's configuration table lists each of them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of PostgreSQL; unset = embedded PostgreSQL in DATA_DIR.",
    )
    secret_key: str = Field(default=DEV_SECRET_KEY, description="Signs session cookies.")
    environment: Environment = Field(default=Environment.development)
    data_dir: Path = Field(default=Path("data"), description="Exports, runs, embedded database.")
    models_dir: Path = Field(
        default=Path("models"), description="Real small models (`make models`) the demo offers."
    )
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = Field(default="info", pattern="^(critical|error|warning|info|debug)$")
    web_workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest JSON or form request body; imports have their own streamed limit.",
    )
    session_max_age: int = Field(default=14 * 24 * 3600, ge=60)
    login_max_failures: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    db_pool_size: int = Field(default=20, ge=1)
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_stale_seconds: float = Field(default=60.0, gt=0)
    run_max_attempts: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        if self.environment != Environment.development and (
            self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 16
        ):
            raise ValueError(
                "SECRET_KEY must be set to a random string of at least 16 characters "
                f"when ENVIRONMENT={self.environment.value}"
            )
        return self

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

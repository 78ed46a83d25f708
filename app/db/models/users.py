"""Users, API tokens, browser sessions and login attempts (SPEC §1)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column


class Role(StrEnum):
    """admin: manages everything. labeler: ranks in the projects they are a member of."""

    admin = "admin"
    labeler = "labeler"


class User(Base):
    """A person who logs in, or an external labeler name from an import (no password)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'labeler')", name="role"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_external: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at_column()


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored. Revoked tokens stay for the audit trail."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(150))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    """A browser session: the cookie carries its secret, only the SHA-256 is stored. Logout
    deletes the row; a password change or deactivation deletes all of the user's rows, so
    a cookie captured earlier is refused at once."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()


class LoginAttempt(Base):
    """A failed login, kept to rate-limit by username and by client address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = created_at_column()

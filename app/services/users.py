"""Users, API tokens and login (with rate limiting by username and by address)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import ApiToken, LoginAttempt, Role, User
from app.domain.errors import Conflict, NotFound, Problems, RateLimited, ValidationFailed
from app.domain.names import EXTERNAL_PREFIX, USERNAME_RE
from app.services.security import hash_password, hash_token, new_token, verify_password

MIN_PASSWORD = 8


def validate_new_user(username: str, password: str, role: str) -> None:
    problems = Problems()
    if not USERNAME_RE.match(username or ""):
        problems.add("username", "1–150 letters, digits or _ . @ : - (starting alnum)")
    elif username.startswith(EXTERNAL_PREFIX):
        problems.add("username", f"the {EXTERNAL_PREFIX} prefix is reserved for imported labelers")
    if len(password or "") < MIN_PASSWORD:
        problems.add("password", f"must be at least {MIN_PASSWORD} characters")
    if role not in {r.value for r in Role}:
        problems.add("role", "must be admin or labeler")
    problems.raise_if_any()


def create_user(session: Session, username: str, password: str, role: str) -> User:
    """Create a user who can log in. Raises ValidationFailed or Conflict (name taken)."""
    validate_new_user(username, password, role)
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"user {username!r} already exists") from exc
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def create_token(session: Session, username: str, name: str = "cli") -> str:
    """Mint an API token for a user; only its hash is stored. Returns the token once."""
    user = get_user(session, username)
    token = new_token()
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:12])
    )
    session.commit()
    return token


def revoke_token(session: Session, token_id: int, owner_id: int | None = None) -> None:
    stmt = update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if owner_id is not None:
        stmt = stmt.where(ApiToken.user_id == owner_id)
    if session.execute(stmt.values(revoked_at=func.now())).rowcount == 0:
        session.rollback()
        raise NotFound(f"no active token {token_id}")
    session.commit()


def user_for_token(session: Session, token: str) -> User | None:
    """The active user behind an unrevoked token, or None."""
    return session.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.revoked_at.is_(None),
            User.is_active,
        )
    )


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 10
    window_seconds: int = 900


def login(
    session: Session, username: str, password: str, address: str, policy: LoginPolicy
) -> User:
    """Check a password. After ``max_failures`` failures within the window, for this
    username or from this address, every attempt is refused with RateLimited."""
    since = datetime.now(UTC) - timedelta(seconds=policy.window_seconds)
    failures = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.at > since,
            or_(LoginAttempt.username == username, LoginAttempt.address == address),
        )
    )
    if failures >= policy.max_failures:
        minutes = max(1, policy.window_seconds // 60)
        raise RateLimited(f"Too many failed logins. Try again in {minutes} minutes.")
    user = session.scalar(select(User).where(User.username == username, User.is_active))
    if user is None or not verify_password(user.password_hash, password):
        session.add(LoginAttempt(username=username[:150], address=address[:64]))
        session.commit()
        raise ValidationFailed.single("password", "wrong username or password")
    session.execute(
        delete(LoginAttempt).where(LoginAttempt.username == username, LoginAttempt.at > since)
    )
    session.commit()
    return user

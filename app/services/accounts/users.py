"""Users and login (with rate limiting by username and by address); tokens are in
``tokens``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import LoginAttempt, Role, User
from app.domain.errors import Conflict, NotFound, Problems, RateLimited, ValidationFailed
from app.domain.names import EXTERNAL_PREFIX, USERNAME_RE
from app.services.accounts import sessions, token_cache
from app.services.accounts.security import hash_password, verify_password

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


def get_user_by_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.is_external:
        raise NotFound(f"no user with id {user_id}")
    return user


def list_users(session: Session) -> list[User]:
    """The people who log in (not the external labeler names of imports), by name."""
    return list(
        session.scalars(select(User).where(User.is_external.is_(False)).order_by(User.username))
    )


def set_password(session: Session, user: User, password: str) -> None:
    """A new password; every browser session of the user ends at once."""
    if len(password or "") < MIN_PASSWORD:
        raise ValidationFailed.single("password", f"must be at least {MIN_PASSWORD} characters")
    session.execute(
        update(User).where(User.id == user.id).values(password_hash=hash_password(password))
    )
    sessions.end_all(session, user.id)
    session.commit()


def deactivate(session: Session, user: User, by: User | None = None) -> User:
    """The user can no longer log in; their sessions end and their tokens are refused at
    once. ``by`` (the admin asking) may not deactivate themselves."""
    if by is not None and by.id == user.id:
        raise Conflict("you cannot deactivate your own account")
    session.execute(update(User).where(User.id == user.id).values(is_active=False))
    sessions.end_all(session, user.id)
    session.commit()
    token_cache.forget_all()
    session.refresh(user)
    return user


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

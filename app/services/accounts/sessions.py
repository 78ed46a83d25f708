"""Browser sessions, recorded on the server (issue 11): the signed cookie carries the user
id and a random secret; a request is the user's only while the secret's row exists and
the user is active. Logout deletes the row; ``end_all`` (password change, deactivation)
deletes every row of a user."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import User, UserSession
from app.services.accounts.security import hash_token


def start_session(session: Session, user: User, max_age_s: int) -> str:
    """A new session for ``user``; returns its secret (for the cookie). The user's sessions
    older than ``max_age_s`` (their cookies have expired) are cleared on the way."""
    stale = datetime.now(UTC) - timedelta(seconds=max_age_s)
    session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.created_at < stale)
    )
    secret = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, secret_hash=hash_token(secret)))
    session.commit()
    return secret


def user_for_session(session: Session, user_id: object, secret: object) -> User | None:
    """The active, non-external user of a live session, or None."""
    if not isinstance(user_id, int) or not isinstance(secret, str) or not secret:
        return None
    return session.scalar(
        select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.secret_hash == hash_token(secret),
            User.id == user_id,
            User.is_active,
            User.is_external.is_(False),
        )
    )


def end_session(session: Session, secret: object) -> None:
    """Logout: the session's row goes, so its cookie is refused from now on."""
    if isinstance(secret, str) and secret:
        session.execute(delete(UserSession).where(UserSession.secret_hash == hash_token(secret)))
        session.commit()


def end_all(session: Session, user_id: int) -> None:
    """Every session of a user ends (the caller commits, with the change that asked)."""
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))

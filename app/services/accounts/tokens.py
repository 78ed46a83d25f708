"""API tokens: minted for a user (only their hash is stored), listed, revoked, and resolved.

Resolving a token records when it was last used (``last_used_at``), at most once per
``TOUCH_EVERY`` per token, and is remembered for a second (``token_cache``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from app.db.models import ApiToken, User
from app.domain.errors import NotFound
from app.services.accounts import token_cache
from app.services.accounts.security import hash_token, new_token
from app.services.accounts.users import get_user

TOUCH_EVERY = timedelta(minutes=1)
_USER_COLUMNS = tuple(column.key for column in User.__table__.columns)


@dataclass(frozen=True)
class TokenInfo:
    """A token as its owner or an admin sees it: never the secret, only its first 12
    characters (``prefix``) to recognise it by."""

    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None  # to the minute (``TOUCH_EVERY``)


def mint_token(session: Session, user: User, name: str = "cli") -> tuple[TokenInfo, str]:
    """A new token for ``user``: its description and the secret (shown once)."""
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:12])
    session.add(row)
    session.commit()
    info = TokenInfo(
        row.id, user.id, user.username, row.name, row.prefix, row.created_at, row.revoked_at
    )
    return info, token


def create_token(session: Session, username: str, name: str = "cli") -> str:
    """Mint an API token for a user by name; only its hash is stored. Returns the token once."""
    return mint_token(session, get_user(session, username), name)[1]


def list_tokens(session: Session, user_id: int | None = None) -> list[TokenInfo]:
    """The tokens of one user (every user's when ``user_id`` is None), newest first,
    revoked ones included (with ``revoked_at``)."""
    stmt = (
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.id.desc())
    )
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return [
        TokenInfo(
            t.id, t.user_id, name, t.name, t.prefix, t.created_at, t.revoked_at, t.last_used_at
        )
        for t, name in session.execute(stmt)
    ]


def revoke_token(session: Session, token_id: int, owner_id: int | None = None) -> None:
    """Revoke a token at once; with ``owner_id``, only one of that user's tokens."""
    stmt = update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if owner_id is not None:
        stmt = stmt.where(ApiToken.user_id == owner_id)
    if session.execute(stmt.values(revoked_at=func.now())).rowcount == 0:
        session.rollback()
        raise NotFound(f"no active token {token_id}")
    session.commit()
    token_cache.forget_all()


def user_for_token(session: Session, token: str) -> User | None:
    """The active user behind an unrevoked token, or None. Records the use (committing)
    when the token's ``last_used_at`` is older than ``TOUCH_EVERY``."""
    digest, seen = hash_token(token), token_cache.generation()
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < func.now() - TOUCH_EVERY)
    found = session.execute(
        select(User, ApiToken.id, stale)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None), User.is_active)
    ).first()
    if found is None:
        token_cache.forget(digest)
        return None
    user, token_id, untouched = found
    if untouched:  # once a minute per token at most: the hot path reads only
        touch = update(ApiToken).where(ApiToken.id == token_id, stale)
        session.execute(touch.values(last_used_at=func.now()))
        session.commit()
    token_cache.remember(digest, {key: getattr(user, key) for key in _USER_COLUMNS}, seen)
    return user


def remembered_user(token: str) -> User | None:
    """The user behind ``token`` from memory when it resolved within the last second (no
    I/O: safe on the event loop), detached: its columns are loaded, no session holds it.
    None when it must be looked up (``user_for_token``)."""
    values = token_cache.recall(hash_token(token))
    if values is None:
        return None
    user = User(**values)
    make_transient_to_detached(user)
    return user


def cached_user_for_token(session: Session, token: str) -> User | None:
    """``remembered_user``, joining ``session`` as if loaded by it."""
    user = remembered_user(token)
    if user is not None:
        session.add(user)
    return user

"""API tokens: minted for a user (only their hash is stored), revoked, and resolved."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.models import ApiToken, User
from app.domain.errors import NotFound
from app.services.accounts.security import hash_token, new_token
from app.services.accounts.users import get_user


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

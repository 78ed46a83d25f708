"""Users and tokens (SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from app.domain.names import EXTERNAL_PREFIX, USERNAME_RE
from app.services.accounts import policy, tokens, users
from app.services.accounts.users import MIN_PASSWORD
from app.web.deps import AdminUser, CurrentUser, SessionDep
from app.web.inputs import DbId
from app.web.openapi import documented

router = APIRouter(prefix="/api/v1", tags=["users"])


NEW_USERNAME = {
    "type": "string",
    "pattern": USERNAME_RE.pattern,
    "not": {"pattern": f"^{EXTERNAL_PREFIX}"},
    "description": f"Letters, digits or _ . @ : - (starting alnum); {EXTERNAL_PREFIX} is reserved.",
}


class NewUser(BaseModel):
    username: Annotated[str, documented(NEW_USERNAME)] = Field(max_length=150)
    password: str = Field(min_length=MIN_PASSWORD, max_length=1000)
    role: Literal["admin", "labeler"] = "labeler"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    is_active: bool


class NewToken(BaseModel):
    name: str = Field(default="api", min_length=1, max_length=150)


class TokenInfoOut(BaseModel):
    """A token without its secret: ``prefix`` (its first 12 characters) recognises it;
    ``last_used_at`` is when it last authenticated a request (to the minute), null if never."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenOut(TokenInfoOut):
    """A new token: ``token`` is the secret, shown this once."""

    token: str


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: NewUser, db: SessionDep, _: AdminUser) -> UserOut:
    user = users.create_user(db, body.username, body.password, body.role)
    return UserOut.model_validate(user)


@router.get("/users", response_model=list[UserOut])
def list_users(db: SessionDep, _: AdminUser) -> list[UserOut]:
    """Admin: everyone who logs in (external labeler names of imports left out)."""
    return [UserOut.model_validate(u) for u in users.list_users(db)]


@router.get("/users/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.post("/users/{user_id}/deactivate", response_model=UserOut)
def deactivate_user(user_id: DbId, db: SessionDep, admin: AdminUser) -> UserOut:
    """Admin: the user can no longer log in; their sessions and tokens stop working at once
    (409 for one's own account)."""
    user = users.deactivate(db, users.get_user_by_id(db, user_id), by=admin)
    return UserOut.model_validate(user)


@router.get("/tokens", response_model=list[TokenInfoOut])
def list_tokens(db: SessionDep, user: CurrentUser, user_id: DbId | None = None) -> list:
    """The caller's tokens, newest first, revoked ones included; an admin may ask for
    another user's (``user_id``)."""
    if user_id is not None and user_id != user.id:
        policy.require_admin(user)
    return [TokenInfoOut.model_validate(t) for t in tokens.list_tokens(db, user_id or user.id)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
def create_token(body: NewToken, db: SessionDep, user: CurrentUser) -> TokenOut:
    """A new token for the caller; the secret is shown once."""
    info, secret = tokens.mint_token(db, user, body.name)
    return TokenOut(**TokenInfoOut.model_validate(info).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: DbId, db: SessionDep, user: CurrentUser) -> None:
    """Revoke one of the caller's tokens (an admin: anyone's); it is refused at once."""
    owner = None if policy.is_admin(user) else user.id
    tokens.revoke_token(db, token_id, owner_id=owner)

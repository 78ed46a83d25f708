"""Users and tokens (SPEC §7)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from app.services.accounts import tokens, users
from app.web.deps import AdminUser, CurrentUser, SessionDep
from app.web.inputs import DbId

router = APIRouter(prefix="/api/v1", tags=["users"])


class NewUser(BaseModel):
    username: str = Field(max_length=150)
    password: str = Field(max_length=1000)
    role: Literal["admin", "labeler"] = "labeler"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str


class NewToken(BaseModel):
    name: str = Field(default="api", min_length=1, max_length=150)


class TokenOut(BaseModel):
    token: str


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: NewUser, db: SessionDep, _: AdminUser) -> UserOut:
    user = users.create_user(db, body.username, body.password, body.role)
    return UserOut.model_validate(user)


@router.get("/users/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
def create_token(body: NewToken, db: SessionDep, user: CurrentUser) -> TokenOut:
    """A new token for the caller; shown once."""
    return TokenOut(token=tokens.create_token(db, user.username, body.name))


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: DbId, db: SessionDep, user: CurrentUser) -> None:
    tokens.revoke_token(db, token_id, owner_id=user.id)

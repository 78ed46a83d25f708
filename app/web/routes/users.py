"""The people page (admin): everyone who logs in, with a control to deactivate one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.domain.errors import Conflict
from app.services.accounts import users
from app.web.deps import AdminUser, SessionDep
from app.web.inputs import DbId
from app.web.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


def _page(request: Request, db: SessionDep, user, error: str | None = None, status: int = 200):
    ctx = {"user": user, "people": users.list_users(db), "error": error}
    return render(request, "admin/users.html", ctx, status_code=status)


@router.get("/admin/users")
def users_page(request: Request, db: SessionDep, user: AdminUser) -> Response:
    return _page(request, db, user)


@router.post("/admin/users/{user_id}/deactivate")
def deactivate(request: Request, user_id: DbId, db: SessionDep, user: AdminUser) -> Response:
    """Deactivate a user (their sessions and tokens stop working at once); back to the list."""
    try:
        users.deactivate(db, users.get_user_by_id(db, user_id), by=user)
    except Conflict as exc:
        return _page(request, db, user, exc.message, status=409)
    return RedirectResponse("/admin/users", status_code=303)

"""The caller's projects."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.services import projects
from app.services.accounts.policy import is_admin
from app.web.deps import CurrentUser, SessionDep
from app.web.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
def home(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    visible = projects.list_projects(db, user, include_archived=is_admin(user))
    return render(request, "home.html", {"user": user, "projects": visible})

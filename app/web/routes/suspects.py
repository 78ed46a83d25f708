"""The page "Review suspected mislabels" of a suspects run (issue 12 §4), admin only: the
flagged judgments, most confident first, each with "Send back for more labels" and
"Accept as is". With htmx a decision removes its row and shows a toast; without
JavaScript the form posts and the page reloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.services.runs import queue as runs
from app.services.runs import suspects
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.forms import toast
from app.web.inputs import DbId
from app.web.templating import is_htmx, render

router = APIRouter(prefix="/admin/runs/{run_id}/suspects", tags=["pages"], include_in_schema=False)

PAGE = "admin/suspects.html"
DONE = {"accepted": "accepted as is", "sent_back": "sent back for one more label"}


@router.get("")
def suspects_page(
    request: Request, run_id: DbId, db: SessionDep, settings: SettingsDep, user: AdminUser
) -> Response:
    listing = suspects.report(db, settings, run_id)
    run = runs.get_run(db, run_id)
    return render(request, PAGE, {"user": user, "run": run, **listing})


@router.post("/{judgment_id}")
def decide(
    request: Request,
    run_id: DbId,
    judgment_id: DbId,
    decision: Annotated[str, Form(max_length=32)],
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
) -> Response:
    """Record the decision: htmx gets an empty row (removed) and a toast, a form a 303."""
    review = suspects.decide(db, settings, run_id, judgment_id, decision, user)
    if is_htmx(request):
        message = f"Judgment {review.judgment_id} {DONE[review.decision]}."
        return Response(status_code=200, headers=toast(message))
    return RedirectResponse(f"/admin/runs/{run_id}/suspects", status_code=303)

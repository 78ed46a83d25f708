"""Suspected mislabels of a suspects run (issue 12 §4): the list, and the admin's decision on
one flagged judgment. Admin only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, status
from pydantic import BaseModel

from app.db.models import SuspectDecision
from app.services.runs import suspects
from app.web.deps import AdminUser, SessionDep, SettingsDep
from app.web.inputs import DbId

router = APIRouter(prefix="/api/v1/training-runs", tags=["training runs"])

DecisionChoice = Literal[tuple(d.value for d in SuspectDecision)]
Limit = Annotated[int, Ge(1), Le(10_000)]


class Review(BaseModel):
    decision: DecisionChoice


@router.get("/{run_id}/suspects")
def list_suspects(
    run_id: DbId, db: SessionDep, settings: SettingsDep, _: AdminUser, limit: Limit = 200
) -> dict[str, Any]:
    """Judgments the out-of-fold reward model contradicts beyond its calibration threshold,
    not reviewed yet, most confident first: labeler, prompt, both completions of the most
    contradicted pair, ``score_margin`` (r_chosen − r_rejected) and ``confidence``
    (1 − p_labeled). 404 for a run that is not a suspects run, 409 before it succeeded."""
    return suspects.report(db, settings, run_id, limit)


@router.post("/{run_id}/suspects/{judgment_id}/review", status_code=status.HTTP_201_CREATED)
def review_suspect(
    run_id: DbId,
    judgment_id: DbId,
    body: Review,
    db: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
) -> dict[str, Any]:
    """``accepted`` keeps the judgment; ``sent_back`` raises its prompt's target k by one so
    the prompt is handed out again. Either way it leaves the list; a second decision is 409."""
    review = suspects.decide(db, settings, run_id, judgment_id, body.decision, user)
    return {"judgment_id": review.judgment_id, "run_id": run_id, "decision": review.decision}

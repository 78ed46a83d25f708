"""The labeling loop over HTTP (SPEC §7): next task, judgment, skip.

Next and judgment are the hot path: async endpoints that call their service in one
worker-thread hop (``in_thread``); FastAPI checks and serializes the answer on the event
loop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, PlainSerializer
from starlette.responses import Response

from app.services.labeling.assignment import next_task
from app.services.labeling.checks import JudgmentIn
from app.services.labeling.judgments import skip_assignment, submit_judgment
from app.web.deps import CurrentUser, SessionDep, in_thread
from app.web.inputs import DbId

router = APIRouter(prefix="/api/v1", tags=["labeling"])


class CompletionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    text: str


class TaskOut(BaseModel):
    """SPEC §7, read from the service's ``Task``; completions in display order."""

    model_config = ConfigDict(from_attributes=True)

    assignment_id: int
    prompt: Any
    completions: list[CompletionOut]
    expires_at: Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str)]


class JudgmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    judgment_id: int


@router.get(
    "/projects/{project_id}/tasks/next",
    response_model=TaskOut,
    responses={204: {"description": "Nothing is left for this labeler."}},
)
async def get_next_task(project_id: DbId, db: SessionDep, user: CurrentUser) -> TaskOut | Response:
    """The caller's task: the lease they hold, or a new one; 204 when nothing is left."""
    task = await in_thread(next_task, db, user, project_id)
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return TaskOut.model_validate(task)


@router.post(
    "/assignments/{assignment_id}/judgment",
    status_code=status.HTTP_201_CREATED,
    response_model=JudgmentOut,
)
async def post_judgment(
    assignment_id: DbId, body: JudgmentIn, db: SessionDep, user: CurrentUser
) -> JudgmentOut:
    """Record a judgment; the same body again returns the first judgment (201)."""
    done = await in_thread(submit_judgment, db, user, assignment_id, body)
    return JudgmentOut.model_validate(done)


@router.post("/assignments/{assignment_id}/skip", status_code=status.HTTP_204_NO_CONTENT)
def post_skip(assignment_id: DbId, db: SessionDep, user: CurrentUser) -> Response:
    """Pass on a task; it is never offered to the caller again."""
    skip_assignment(db, user, assignment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

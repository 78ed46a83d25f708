"""Closing a lease: `submit_judgment` records a ranking, `skip_assignment` passes.

A judgment is written in one transaction with its consequences: the assignment becomes
``submitted``, ``prompts.n_judgments`` grows, the prompt's agreement figures are
recomputed from all its rankings and, with adaptive overlap, a contested prompt's target
is raised. The prompt row is locked before the rankings are read, so two judgments of
one prompt never compute the figures from stale data.

Resubmitting the same body returns the first judgment (the comparison uses a canonical
hash of the body: tie order, key order and repeated flags do not matter, and
``duration_ms`` is a measurement, not content); another body is a Conflict. A lease that
expired is refused with Expired and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from app.db.models import AssignmentStatus, ProjectStatus, User
from app.domain.assignment import needs_more_labels
from app.domain.errors import Conflict, DomainError, Expired, NotFound, ValidationFailed
from app.domain.figures import prompt_figures
from app.domain.rankings import Tiers, validate_ranking, validate_ratings
from app.services.assignment import ProjectClosed, with_retry
from app.services.project_settings import ProjectSettings

MAX_RATIONALE = 5000
MAX_FLAGS = 20
MAX_FLAG_LENGTH = 64
MAX_DURATION_MS = 2**31 - 1
OPEN_STATUSES = frozenset({ProjectStatus.active.value, ProjectStatus.paused.value})


class JudgmentIn(BaseModel):
    """A judgment as submitted (SPEC §2); the service checks it against the project."""

    model_config = ConfigDict(extra="forbid")

    ranking: Any = Field(default=None, description="Tiers of completion ids, best first.")
    reject_all: StrictBool = False
    ratings: Any = Field(default=None, description="{completion_id: {axis: 1..5}}")
    flags: Any = Field(default=None, description="{completion_id: [flag, ...]}")
    rationale: str = Field(default="", max_length=MAX_RATIONALE)
    duration_ms: int | None = Field(default=None, ge=0, le=MAX_DURATION_MS)


@dataclass(frozen=True)
class CleanJudgment:
    """A judgment that passed every check of its project."""

    ranking: Tiers | None
    reject_all: bool
    ratings: dict[str, dict[str, int]]
    flags: dict[str, list[str]]
    rationale: str
    duration_ms: int | None

    def body_hash(self) -> str:
        canonical = {
            "ranking": [sorted(tier) for tier in self.ranking] if self.ranking else None,
            "reject_all": self.reject_all,
            "ratings": self.ratings,
            "flags": self.flags,
            "rationale": self.rationale,
        }
        raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    judgment_id: int
    created: bool  # False when an identical resubmission returned the first judgment


def _details(exc: ValidationFailed) -> list[dict[str, Any]]:
    return list(exc.details or [])


def _check_flags(flags: Any, completion_ids: list[str]) -> dict[str, list[str]]:
    if flags is None:
        return {}
    if not isinstance(flags, dict):
        raise ValidationFailed.single("flags", "must be an object mapping completion ids to lists")
    known, problems, out = set(completion_ids), [], {}
    for cid, values in flags.items():
        field = f"flags.{cid}"
        if cid not in known:
            problems.append({"line": None, "field": field, "message": "unknown completion id"})
        elif (
            not isinstance(values, list)
            or len(values) > MAX_FLAGS
            or not all(isinstance(v, str) and 0 < len(v.strip()) <= MAX_FLAG_LENGTH for v in values)
        ):
            message = f"a list of at most {MAX_FLAGS} names of 1 to {MAX_FLAG_LENGTH} characters"
            problems.append({"line": None, "field": field, "message": message})
        elif values:
            out[cid] = sorted({v.strip() for v in values})
    if problems:
        raise ValidationFailed(f"{problems[0]['field']}: {problems[0]['message']}", problems)
    return out


def _check_ranking(body: JudgmentIn, ids: list[str], settings: ProjectSettings) -> Tiers | None:
    if body.reject_all:
        if not settings.allow_reject_all:
            raise ValidationFailed.single(
                "reject_all", "this project does not allow rejecting all completions"
            )
        if body.ranking not in (None, []):
            raise ValidationFailed.single("ranking", "leave it out when reject_all is true")
        return None
    if body.ranking is None:
        raise ValidationFailed.single("ranking", "required unless reject_all is true")
    return validate_ranking(body.ranking, ids, allow_ties=settings.allow_ties)


def clean_judgment(
    body: JudgmentIn, completion_ids: list[str], settings: ProjectSettings
) -> CleanJudgment:
    """Check a judgment against the prompt's completions and the project's settings.

    Raises one ValidationFailed listing every problem, each detail naming its field."""
    details: list[dict[str, Any]] = []
    ranking = ratings = flags = None
    try:
        ranking = _check_ranking(body, completion_ids, settings)
    except ValidationFailed as exc:
        details += _details(exc)
    try:
        ratings = validate_ratings(body.ratings, completion_ids, settings.rating_axes)
    except ValidationFailed as exc:
        details += _details(exc)
    try:
        flags = _check_flags(body.flags, completion_ids)
    except ValidationFailed as exc:
        details += _details(exc)
    if settings.require_rationale and not body.rationale.strip():
        details.append({"line": None, "field": "rationale", "message": "required in this project"})
    if details:
        summary = f"{details[0]['field']}: {details[0]['message']}"
        if len(details) > 1:
            summary += f" (and {len(details) - 1} more problem(s))"
        raise ValidationFailed(summary, details)
    return CleanJudgment(
        ranking, body.reject_all, ratings or {}, flags or {}, body.rationale, body.duration_ms
    )


_LOAD = text(
    """
    SELECT a.id, a.project_id, a.prompt_id, a.status, a.expires_at > now() AS live,
           a.display_order, p.status AS project_status, p.settings,
           j.id AS judgment_id, j.body_hash,
           EXISTS (SELECT 1 FROM project_members m
                   WHERE m.project_id = a.project_id AND m.user_id = :uid) AS member
    FROM assignments a
    JOIN projects p ON p.id = a.project_id
    LEFT JOIN judgments j ON j.assignment_id = a.id
    WHERE a.id = :aid AND a.labeler_id = :uid
    """
)
_INSERT = text(
    """
    WITH a AS (
      UPDATE assignments SET status = 'submitted'
      WHERE id = :aid AND labeler_id = :uid AND status = 'active' AND expires_at > now()
      RETURNING id, project_id, prompt_id, display_order
    ), p AS (
      UPDATE prompts SET n_judgments = prompts.n_judgments + 1
      FROM a WHERE prompts.id = a.prompt_id
      RETURNING prompts.id, prompts.n_judgments, prompts.target_labels, prompts.is_gold
    ), j AS (
      INSERT INTO judgments (project_id, prompt_id, labeler_id, assignment_id, ranking,
                             reject_all, ratings, flags, rationale, duration_ms,
                             display_order, body_hash)
      SELECT a.project_id, a.prompt_id, :uid, a.id, CAST(:ranking AS jsonb), :reject_all,
             CAST(:ratings AS jsonb), CAST(:flags AS jsonb), :rationale, :duration_ms,
             a.display_order, :body_hash
      FROM a
      RETURNING id
    )
    SELECT j.id AS judgment_id, p.id AS prompt_id, p.n_judgments, p.target_labels, p.is_gold
    FROM j, p
    """
)
_RANKINGS = text(
    "SELECT ranking FROM judgments WHERE prompt_id = :prompt AND ranking IS NOT NULL ORDER BY id"
)
_FIGURES = text(
    """
    UPDATE prompts SET agreement = :agreement, kendall_w = :kendall_w,
                       target_labels = GREATEST(target_labels, :target)
    WHERE id = :prompt
    """
)
_SKIP = text(
    """
    WITH a AS (
      UPDATE assignments SET status = 'skipped'
      WHERE id = :aid AND labeler_id = :uid AND status = 'active'
      RETURNING prompt_id
    ), p AS (
      UPDATE prompts SET slots_taken = prompts.slots_taken - 1
      FROM a WHERE prompts.id = a.prompt_id
    )
    SELECT count(*) FROM a
    """
)
_STATUS = text("SELECT status FROM assignments WHERE id = :aid AND labeler_id = :uid")


def _load(session: Session, assignment_id: int, user_id: int) -> Row[Any]:
    row = session.execute(_LOAD, {"aid": assignment_id, "uid": user_id}).first()
    if row is None or not row.member:
        raise NotFound(f"assignment {assignment_id} not found")
    return row


def _replay(row: Row[Any], clean: CleanJudgment) -> Submitted:
    if row.body_hash != clean.body_hash():
        raise Conflict(
            f"assignment {row.id} was already judged with a different body; "
            "a judgment cannot be changed"
        )
    return Submitted(row.judgment_id, created=False)


def _refuse_closed_lease(row: Row[Any]) -> None:
    if row.status == AssignmentStatus.skipped.value:
        raise Conflict(f"assignment {row.id} was skipped; it cannot be judged any more")
    if row.status == AssignmentStatus.expired.value or not row.live:
        raise Expired(
            f"the lease on assignment {row.id} expired and the task went back to the queue; "
            "nothing was recorded"
        )
    if row.project_status not in OPEN_STATUSES:
        raise ProjectClosed(f"the project is {row.project_status}: judgments are closed")


def _params(row: Row[Any], user_id: int, clean: CleanJudgment) -> dict[str, Any]:
    ranking = [list(tier) for tier in clean.ranking] if clean.ranking is not None else None
    return {
        "aid": row.id,
        "uid": user_id,
        "ranking": None if ranking is None else json.dumps(ranking),
        "reject_all": clean.reject_all,
        "ratings": json.dumps(clean.ratings),
        "flags": json.dumps(clean.flags),
        "rationale": clean.rationale,
        "duration_ms": clean.duration_ms,
        "body_hash": clean.body_hash(),
    }


def _update_figures(
    session: Session, written: Row[Any], ids: list[str], settings: ProjectSettings
) -> None:
    """Recompute the prompt's agreement (its row is locked by this transaction) and, with
    adaptive overlap, raise the target of a contested prompt that reached it."""
    if written.n_judgments < 2:
        return
    rankings = session.execute(_RANKINGS, {"prompt": written.prompt_id}).scalars().all()
    figures = prompt_figures(rankings, ids)
    agreement = figures["pairwise_agreement"]
    target = written.target_labels
    adaptive = settings.adaptive
    if (
        adaptive is not None
        and not written.is_gold
        and written.n_judgments >= target
        and needs_more_labels(
            agreement,
            written.n_judgments,
            settings.labels_per_prompt,
            adaptive.max_labels,
            adaptive.min_agreement,
        )
    ):
        target += 1
    session.execute(
        _FIGURES,
        {
            "prompt": written.prompt_id,
            "agreement": agreement,
            "kendall_w": figures["kendall_w"],
            "target": target,
        },
    )


def _record(session: Session, user_id: int, assignment_id: int, body: JudgmentIn) -> Submitted:
    for _ in range(3):  # re-read after losing a race to a concurrent submit or reclaim
        row = _load(session, assignment_id, user_id)
        ids = list(row.display_order)
        settings = ProjectSettings.model_validate(row.settings)
        if row.judgment_id is not None:
            return _replay(row, clean_judgment(body, ids, settings))
        _refuse_closed_lease(row)
        clean = clean_judgment(body, ids, settings)
        written = session.execute(_INSERT, _params(row, user_id, clean)).first()
        if written is not None:
            _update_figures(session, written, ids, settings)
            return Submitted(written.judgment_id, created=True)
        session.rollback()
    raise Conflict(f"assignment {assignment_id} is changing under this request; try again")


def submit_judgment(
    session: Session, user: User, assignment_id: int, body: JudgmentIn
) -> Submitted:
    """Record the labeler's judgment of their assignment (SPEC §2).

    Raises NotFound (not the caller's assignment), ValidationFailed (naming each field),
    Expired (the lease ran out; nothing written), Conflict (skipped, or already judged
    with another body) and ProjectClosed (draft or archived project)."""

    def work() -> Submitted:
        try:
            result = _record(session, user.id, assignment_id, body)
        except DomainError:
            session.rollback()
            raise
        session.commit()
        return result

    return with_retry(session, work)


def skip_assignment(session: Session, user: User, assignment_id: int) -> None:
    """Pass on a task: the slot is freed and the prompt never comes back to this labeler.

    Skipping a skipped or expired assignment again is a no-op; a judged one is a Conflict.
    """

    def work() -> None:
        params = {"aid": assignment_id, "uid": user.id}
        if session.execute(_SKIP, params).scalar_one() == 0:
            status = session.execute(_STATUS, params).scalar()
            session.rollback()
            if status is None:
                raise NotFound(f"assignment {assignment_id} not found")
            if status == AssignmentStatus.submitted.value:
                raise Conflict(f"assignment {assignment_id} was already judged")
            return
        session.commit()

    return with_retry(session, work)

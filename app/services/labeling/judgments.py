"""Closing a lease: `submit_judgment` records a ranking, `skip_assignment` passes.

A judgment is written in one transaction with its consequences: the assignment becomes
``submitted``, ``prompts.n_judgments`` grows, the prompt's agreement figures are
recomputed from all its rankings and, with adaptive overlap, a contested prompt's target
is raised.

The figures are computed optimistically: the first statement reads the prompt's other
rankings and its ``n_judgments``; the insert statement locks the prompt row and writes
the figures only if ``n_judgments`` is still what was read (no judgment of that prompt
committed in between). Otherwise, now holding the row lock, it reads the rankings again
and writes the figures in a further statement. Either way the figures always cover every
judgment of the prompt, and the common case costs two statements and a commit.

Resubmitting the same body returns the first judgment (the comparison uses a canonical
hash of the body: tie order, key order and repeated flags do not matter, and
``duration_ms`` is a measurement, not content); another body is a Conflict. A lease that
expired is refused with Expired and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from app.db.models import AssignmentStatus, ProjectStatus, User
from app.domain.assignment import needs_more_labels
from app.domain.errors import Conflict, DomainError, Expired, NotFound, ProjectClosed
from app.domain.figures import prompt_figures
from app.services.labeling.assignment import with_retry
from app.services.labeling.checks import CleanJudgment, JudgmentIn, clean_judgment
from app.services.project_settings import ProjectSettings

OPEN_STATUSES = frozenset({ProjectStatus.active.value, ProjectStatus.paused.value})


@dataclass(frozen=True)
class Submitted:
    judgment_id: int
    created: bool  # False when an identical resubmission returned the first judgment


@dataclass(frozen=True)
class Figures:
    """A prompt's figures after a judgment, and its target (raised by adaptive overlap)."""

    agreement: float | None
    kendall_w: float | None
    target: int


_LOAD = text(
    """
    SELECT a.id, a.status, a.expires_at > now() AS live, a.display_order,
           p.status AS project_status, p.settings,
           pr.n_judgments, pr.target_labels, pr.is_gold,
           (SELECT jsonb_agg(o.ranking ORDER BY o.id) FROM judgments o
            WHERE o.prompt_id = a.prompt_id AND o.ranking IS NOT NULL) AS rankings,
           j.id AS judgment_id, j.body_hash,
           EXISTS (SELECT 1 FROM project_members m
                   WHERE m.project_id = a.project_id AND m.user_id = :uid) AS member
    FROM assignments a
    JOIN projects p ON p.id = a.project_id
    JOIN prompts pr ON pr.id = a.prompt_id
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
      UPDATE prompts SET
        n_judgments = prompts.n_judgments + 1,
        agreement = CASE WHEN prompts.n_judgments = :seen THEN CAST(:agreement AS float8)
                         ELSE prompts.agreement END,
        kendall_w = CASE WHEN prompts.n_judgments = :seen THEN CAST(:kendall_w AS float8)
                         ELSE prompts.kendall_w END,
        target_labels = CASE WHEN prompts.n_judgments = :seen
                             THEN GREATEST(prompts.target_labels, :target)
                             ELSE prompts.target_labels END
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


def figures_after(
    rankings: list[Any],
    n_judgments: int,
    target: int,
    is_gold: bool,
    ids: list[str],
    settings: ProjectSettings,
) -> Figures:
    """The prompt's figures over ``rankings`` (all of its ranking judgments) once it has
    ``n_judgments``; a contested prompt that reached its target earns one more label."""
    figures = prompt_figures(rankings, ids)
    agreement = figures["pairwise_agreement"]
    adaptive = settings.adaptive
    if (
        adaptive is not None
        and not is_gold
        and n_judgments >= target
        and needs_more_labels(
            agreement,
            n_judgments,
            settings.labels_per_prompt,
            adaptive.max_labels,
            adaptive.min_agreement,
        )
    ):
        target += 1
    return Figures(agreement, figures["kendall_w"], target)


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


def _ranking_json(clean: CleanJudgment) -> list[list[str]] | None:
    return None if clean.ranking is None else [list(tier) for tier in clean.ranking]


def _params(row: Row[Any], user_id: int, clean: CleanJudgment, planned: Figures) -> dict[str, Any]:
    ranking = _ranking_json(clean)
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
        "seen": row.n_judgments,
        "agreement": planned.agreement,
        "kendall_w": planned.kendall_w,
        "target": planned.target,
    }


def _plan(
    row: Row[Any], clean: CleanJudgment, ids: list[str], settings: ProjectSettings
) -> Figures:
    own = _ranking_json(clean)
    rankings = list(row.rankings or []) + ([own] if own is not None else [])
    n = row.n_judgments + 1
    return figures_after(rankings, n, row.target_labels, row.is_gold, ids, settings)


def _refresh_figures(
    session: Session, written: Row[Any], ids: list[str], settings: ProjectSettings
) -> None:
    """The planned figures missed a concurrent judgment: recompute them under the row lock
    this transaction now holds (a fresh statement sees every committed judgment)."""
    rankings = list(session.execute(_RANKINGS, {"prompt": written.prompt_id}).scalars())
    figures = figures_after(
        rankings, written.n_judgments, written.target_labels, written.is_gold, ids, settings
    )
    params = {
        "prompt": written.prompt_id,
        "agreement": figures.agreement,
        "kendall_w": figures.kendall_w,
        "target": figures.target,
    }
    session.execute(_FIGURES, params)


def _record(session: Session, user_id: int, assignment_id: int, body: JudgmentIn) -> Submitted:
    for _ in range(3):  # re-read after losing a race to a concurrent submit or reclaim
        row = _load(session, assignment_id, user_id)
        ids = list(row.display_order)
        settings = ProjectSettings.model_validate(row.settings)
        if row.judgment_id is not None:
            return _replay(row, clean_judgment(body, ids, settings))
        _refuse_closed_lease(row)
        clean = clean_judgment(body, ids, settings)
        planned = _plan(row, clean, ids, settings)
        written = session.execute(_INSERT, _params(row, user_id, clean, planned)).first()
        if written is not None:
            if written.n_judgments != row.n_judgments + 1:
                _refresh_figures(session, written, ids, settings)
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

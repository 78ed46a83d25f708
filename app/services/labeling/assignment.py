"""Handing out tasks: `next_task` gives a labeler one prompt on a lease (SPEC §2, §7);
`labeling_project` decides who may label where, `with_retry` reruns a transaction that
PostgreSQL aborted for a deadlock (or that lost a race on a unique index).

Invariants, each held by the database rather than by luck:

* a labeler never gets a prompt twice: UNIQUE(prompt_id, labeler_id) on assignments, and
  the candidate query skips prompts the labeler already held, judged, skipped or let expire;
* a prompt is never handed out so often that it could collect more than its target:
  ``prompts.slots_taken`` counts open leases plus judgments, the candidate row is locked
  with ``FOR UPDATE SKIP LOCKED`` (its ``slots_taken < target_labels`` is re-checked on the
  locked row) and bumped in the same statement, and a CHECK constraint refuses the rest;
* a labeler holds at most one lease per project: a unique partial index on
  (project_id, labeler_id) WHERE status = 'active'. Of two concurrent calls of one labeler
  (two tabs, a double click) the second fails on it (or on UNIQUE(prompt_id,
  labeler_id) when both picked one prompt), is retried, and returns the first one's
  lease. A held, unexpired lease is always returned again (a reload burns no slot);
* expired leases free their slot exactly once: the reclaiming UPDATE only matches rows
  still ``active``, and a concurrent reclaimer re-checks that after waiting for the row.

The common case is one statement and a commit that does not wait for the WAL flush: a
lease is not worth an fsync. After a crash a lease and its slot can only vanish together,
and a judgment (committed synchronously) flushes the WAL of the lease it closes first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db.models import ProjectStatus, User
from app.domain.errors import DomainError, Forbidden, NotFound, ProjectClosed
from app.services.accounts.policy import is_admin
from app.services.project_settings import ProjectSettings

T = TypeVar("T")

RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
MAX_ATTEMPTS = 4
# Unique indexes a concurrent `next` of the same labeler can make this one violate: the
# one-active-lease index, or (when both picked the same prompt) UNIQUE(prompt, labeler).
LEASE_RACES = frozenset({"ix_assignments_one_active_lease", "uq_assignments_prompt_id_labeler_id"})


@dataclass(frozen=True)
class LabelingProject:
    """What the labeling loop needs to know about a project, read in one query."""

    id: int
    name: str
    status: str
    settings: ProjectSettings

    @property
    def active(self) -> bool:
        return self.status == ProjectStatus.active.value


_PROJECT = text(
    """
    SELECT p.name, p.status, p.settings,
           EXISTS (SELECT 1 FROM project_members m
                   WHERE m.project_id = p.id AND m.user_id = :uid) AS member
    FROM projects p WHERE p.id = :pid
    """
)


def _access(row: Row[Any] | None, user: User, project_id: int) -> LabelingProject:
    """Labelers who are not members get NotFound (they may not know the project exists);
    admins who are not members get Forbidden (admins label only where they are members)."""
    if row is None or (not row.member and not is_admin(user)):
        raise NotFound(f"project {project_id} not found")
    if not row.member:
        raise Forbidden("add yourself to the project's members to label in it")
    settings = ProjectSettings.model_validate(row.settings)
    return LabelingProject(project_id, row.name, row.status, settings)


def labeling_project(session: Session, user: User, project_id: int) -> LabelingProject:
    """The project, if ``user`` may label in it (see ``_access``)."""
    row = session.execute(_PROJECT, {"pid": project_id, "uid": user.id}).first()
    return _access(row, user, project_id)


def require_active(project: LabelingProject) -> None:
    if not project.active:
        raise ProjectClosed(f"project {project.name!r} is {project.status}: no tasks right now")


def with_retry(
    session: Session, work: Callable[[], T], *, constraints: frozenset[str] = frozenset()
) -> T:
    """Run a transaction, retrying it when PostgreSQL aborts it for a deadlock or a
    serialization failure, or a violation of one of the unique ``constraints`` (a race a
    concurrent transaction won); every other error (and the last failure) propagates.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return work()
        except DBAPIError as exc:
            session.rollback()
            diag = getattr(exc.orig, "diag", None)
            lost_race = getattr(diag, "constraint_name", None) in constraints
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if not (sqlstate in RETRY_SQLSTATES or lost_race) or attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


# The common case in one statement: check the caller's membership and the project's
# status, return the lease they hold, or else claim the open prompt nearest completion
# (a gold prompt first, with probability gold_rate) and lease it. Nothing is claimed while
# the project has expired leases (``stale``): the caller reclaims them first.
_NEXT = text(
    """
    WITH proj AS MATERIALIZED (
      SELECT p.name, p.status, p.settings,
             EXISTS (SELECT 1 FROM project_members m
                     WHERE m.project_id = p.id AND m.user_id = :uid) AS member,
             EXISTS (SELECT 1 FROM assignments e WHERE e.project_id = p.id
                     AND e.status = 'active' AND e.expires_at <= now()) AS stale,
             random() < COALESCE(CAST(p.settings ->> 'gold_rate' AS float), 0) AS gold,
             set_config('synchronous_commit', 'off', true) AS commit_mode
      FROM projects p WHERE p.id = :pid
    ), held AS MATERIALIZED (
      SELECT a.id, a.prompt_id, a.display_order, a.expires_at FROM assignments a
      WHERE a.project_id = :pid AND a.labeler_id = :uid AND a.status = 'active'
        AND a.expires_at > now()
      ORDER BY a.id LIMIT 1
    ), go AS MATERIALIZED (
      SELECT proj.gold, CAST(proj.settings ->> 'lease_minutes' AS int) AS lease FROM proj
      WHERE proj.member AND proj.status = 'active' AND NOT proj.stale
        AND NOT EXISTS (SELECT 1 FROM held)
    ), gold AS MATERIALIZED (
      SELECT p.id, p.is_gold FROM prompts p
      WHERE p.project_id = :pid AND p.is_gold AND (SELECT go.gold FROM go)
        AND NOT EXISTS (SELECT 1 FROM assignments a
                        WHERE a.prompt_id = p.id AND a.labeler_id = :uid)
      ORDER BY p.id LIMIT 1
      FOR UPDATE OF p SKIP LOCKED
    ), regular AS (
      SELECT p.id, p.is_gold FROM prompts p
      WHERE p.project_id = :pid AND NOT p.is_gold AND p.slots_taken < p.target_labels
        AND EXISTS (SELECT 1 FROM go) AND NOT EXISTS (SELECT 1 FROM gold)
        AND NOT EXISTS (SELECT 1 FROM assignments a
                        WHERE a.prompt_id = p.id AND a.labeler_id = :uid)
      ORDER BY p.slots_taken DESC, p.id LIMIT 1
      FOR UPDATE OF p SKIP LOCKED
    ), cand AS MATERIALIZED (
      SELECT id, is_gold FROM gold UNION ALL SELECT id, is_gold FROM regular
    ), bump AS (
      UPDATE prompts SET slots_taken = prompts.slots_taken + 1
      FROM cand WHERE prompts.id = cand.id
    ), ins AS (
      INSERT INTO assignments
        (project_id, prompt_id, labeler_id, status, display_order, is_gold, expires_at)
      SELECT :pid, cand.id, :uid, 'active',
             COALESCE((SELECT jsonb_agg(c.external_id ORDER BY random()) FROM completions c
                       WHERE c.prompt_id = cand.id), '[]'::jsonb),
             cand.is_gold, now() + make_interval(mins => (SELECT go.lease FROM go))
      FROM cand
      RETURNING id, prompt_id, display_order, expires_at
    ), task AS (
      SELECT id, prompt_id, display_order, expires_at FROM ins
      UNION ALL
      SELECT id, prompt_id, display_order, expires_at FROM held
    )
    SELECT proj.name, proj.status, proj.settings, proj.member, proj.stale,
           task.id, task.display_order, task.expires_at, pr.prompt,
           (SELECT jsonb_object_agg(c.external_id, c.text) FROM completions c
            WHERE c.prompt_id = task.prompt_id) AS texts
    FROM proj LEFT JOIN task ON true LEFT JOIN prompts pr ON pr.id = task.prompt_id
    """
)
# Expired leases free their slots. Only rows still 'active' match, and a concurrent
# reclaimer re-checks that after waiting for the row lock, so each slot is freed once.
_RECLAIM = text(
    """
    WITH expired AS (
      UPDATE assignments SET status = 'expired'
      WHERE project_id = :pid AND status = 'active' AND expires_at <= now()
      RETURNING prompt_id
    )
    UPDATE prompts SET slots_taken = prompts.slots_taken - e.n
    FROM (SELECT prompt_id, count(*) AS n FROM expired GROUP BY prompt_id) AS e
    WHERE prompts.id = e.prompt_id
    """
)


class TaskCompletion(NamedTuple):
    """One completion of a task, as shown: ``(id, text)``."""

    id: str
    text: str


@dataclass(frozen=True)
class Task:
    """One leased prompt; ``completions`` are in display order.

    Whether the prompt is gold is deliberately not part of a task."""

    assignment_id: int
    prompt: Any
    completions: list[TaskCompletion]
    expires_at: datetime


def _task(row: Row[Any]) -> Task:
    texts = row.texts or {}
    order = list(row.display_order or [])
    completions = [TaskCompletion(cid, texts.get(cid, "")) for cid in order]
    return Task(row.id, row.prompt, completions, row.expires_at)


def lease_task(session: Session, user: User, project_id: int) -> Task | None:
    """``next_task`` inside the caller's transaction: flushes, never commits."""
    params = {"pid": project_id, "uid": user.id}
    row = session.execute(_NEXT, params).first()
    if row is not None and row.stale and row.id is None and row.member:
        session.execute(_RECLAIM, params)
        row = session.execute(_NEXT, params).first()
    require_active(_access(row, user, project_id))
    return None if row.id is None else _task(row)


def next_task(session: Session, user: User, project_id: int) -> Task | None:
    """The labeler's current task in an active project, or None when nothing is left.

    Returns the lease the labeler already holds when there is one (a reload burns no
    slot); otherwise leases the open prompt nearest completion (a gold prompt first with
    probability ``gold_rate``), after reclaiming the project's expired leases if any.
    Raises NotFound / Forbidden (not a member) and ProjectClosed (not active).
    """

    def work() -> Task | None:
        try:
            task = lease_task(session, user, project_id)
        except DomainError:
            session.rollback()
            raise
        session.commit()
        return task

    return with_retry(session, work, constraints=LEASE_RACES)

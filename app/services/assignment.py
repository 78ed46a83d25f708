"""Handing out tasks: `next_task` gives a labeler one prompt on a lease (SPEC §2, §7);
`labeling_project` decides who may label where, `with_retry` reruns a transaction that
PostgreSQL aborted for a deadlock.

Invariants, each held by the database rather than by luck:

* a labeler never gets a prompt twice: UNIQUE(prompt_id, labeler_id) on assignments, and
  the candidate query skips prompts the labeler already held, judged, skipped or let expire;
* a prompt is never handed out so often that it could collect more than its target:
  ``prompts.slots_taken`` counts open leases plus judgments, the candidate row is locked
  with ``FOR UPDATE SKIP LOCKED`` (its ``slots_taken < target_labels`` is re-checked on the
  locked row) and bumped in the same statement, and a CHECK constraint refuses the rest;
* a labeler holds at most one lease per project: an advisory lock per (project, labeler)
  serializes their concurrent calls, and a held, unexpired lease is returned again;
* expired leases free their slot exactly once: the reclaiming UPDATE only matches rows
  still ``active``, and a concurrent reclaimer re-checks that after waiting for the row.

A call costs four round trips (project and lock, reclaim and held lease, claim, commit).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db.models import ProjectStatus, User
from app.domain.errors import Conflict, DomainError, Forbidden, NotFound
from app.services.policy import is_admin
from app.services.project_settings import ProjectSettings

T = TypeVar("T")

RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
MAX_ATTEMPTS = 4


class ProjectClosed(Conflict):
    """The project is not active (draft, paused or archived): no tasks are handed out."""

    code = "project_closed"


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


# The advisory lock serializes one labeler's concurrent `next` calls in one project (two
# tabs, a double click), so a labeler never holds two leases at once. It is released at
# commit; the two-int4 key space never meets the single-bigint migration lock.
_PROJECT_AND_LOCK = text(
    """
    SELECT p.name, p.status, p.settings,
           EXISTS (SELECT 1 FROM project_members m
                   WHERE m.project_id = p.id AND m.user_id = :uid) AS member,
           pg_advisory_xact_lock(CAST(mod(:pid, 2147483647) AS int),
                                 CAST(mod(:uid, 2147483647) AS int)) AS locked
    FROM projects p WHERE p.id = :pid
    """
)
_PROJECT = text(
    """
    SELECT p.name, p.status, p.settings,
           EXISTS (SELECT 1 FROM project_members m
                   WHERE m.project_id = p.id AND m.user_id = :uid) AS member
    FROM projects p WHERE p.id = :pid
    """
)


def labeling_project(
    session: Session, user: User, project_id: int, *, lock_labeler: bool = False
) -> LabelingProject:
    """The project, if ``user`` may label in it.

    Labelers who are not members get NotFound (they may not know it exists); admins who
    are not members get Forbidden (admins label only where they are members). With
    ``lock_labeler`` the labeler's advisory lock for this project is taken as well.
    """
    stmt = _PROJECT_AND_LOCK if lock_labeler else _PROJECT
    row = session.execute(stmt, {"pid": project_id, "uid": user.id}).first()
    if row is None or (not row.member and not is_admin(user)):
        raise NotFound(f"project {project_id} not found")
    if not row.member:
        raise Forbidden("add yourself to the project's members to label in it")
    settings = ProjectSettings.model_validate(row.settings)
    return LabelingProject(project_id, row.name, row.status, settings)


def require_active(project: LabelingProject) -> None:
    if not project.active:
        raise ProjectClosed(f"project {project.name!r} is {project.status}: no tasks right now")


def with_retry(session: Session, work: Callable[[], T]) -> T:
    """Run a transaction, retrying it when PostgreSQL aborts it for a deadlock or a
    serialization failure; every other error (and the last failure) propagates."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return work()
        except DBAPIError as exc:
            session.rollback()
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if sqlstate not in RETRY_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


_rng = random.SystemRandom()

_RECLAIM_AND_HELD = text(
    """
    WITH expired AS (
      UPDATE assignments SET status = 'expired'
      WHERE project_id = :pid AND status = 'active' AND expires_at <= now()
      RETURNING prompt_id
    ), freed AS (
      UPDATE prompts SET slots_taken = prompts.slots_taken - e.n
      FROM (SELECT prompt_id, count(*) AS n FROM expired GROUP BY prompt_id) AS e
      WHERE prompts.id = e.prompt_id
    )
    SELECT a.id, a.display_order, a.expires_at, pr.prompt,
           (SELECT jsonb_object_agg(c.external_id, c.text) FROM completions c
            WHERE c.prompt_id = a.prompt_id) AS texts
    FROM assignments a JOIN prompts pr ON pr.id = a.prompt_id
    WHERE a.project_id = :pid AND a.labeler_id = :uid AND a.status = 'active'
      AND a.expires_at > now()
    ORDER BY a.id LIMIT 1
    """
)

_CLAIM = """
    WITH cand AS (
      SELECT p.id, p.is_gold, p.prompt FROM prompts p
      WHERE p.project_id = :pid AND {queue}
        AND NOT EXISTS (SELECT 1 FROM assignments a
                        WHERE a.prompt_id = p.id AND a.labeler_id = :uid)
      ORDER BY {order} LIMIT 1
      FOR UPDATE OF p SKIP LOCKED
    ), bump AS (
      UPDATE prompts SET slots_taken = prompts.slots_taken + 1
      FROM cand WHERE prompts.id = cand.id
    ), ins AS (
      INSERT INTO assignments
        (project_id, prompt_id, labeler_id, status, display_order, is_gold, expires_at)
      SELECT :pid, cand.id, :uid, 'active',
             COALESCE((SELECT jsonb_agg(c.external_id ORDER BY random()) FROM completions c
                       WHERE c.prompt_id = cand.id), '[]'::jsonb),
             cand.is_gold, now() + make_interval(mins => :lease)
      FROM cand
      RETURNING id, prompt_id, display_order, expires_at
    )
    SELECT ins.id, ins.display_order, ins.expires_at, cand.prompt,
           (SELECT jsonb_object_agg(c.external_id, c.text) FROM completions c
            WHERE c.prompt_id = ins.prompt_id) AS texts
    FROM ins JOIN cand ON cand.id = ins.prompt_id
"""
# Regular prompts, nearest completion first; the predicate matches the partial index
# ix_prompts_open_queue (project_id, slots_taken DESC, id) so the scan stops at once.
_CLAIM_REGULAR = text(
    _CLAIM.format(
        queue="NOT p.is_gold AND p.slots_taken < p.target_labels",
        order="p.slots_taken DESC, p.id",
    )
)
# Gold prompts do not count against k: every labeler may get each one once.
_CLAIM_GOLD = text(_CLAIM.format(queue="p.is_gold", order="p.id"))


@dataclass(frozen=True)
class Task:
    """One leased prompt; ``completions`` are (completion id, text) in display order.

    Whether the prompt is gold is deliberately not part of a task."""

    assignment_id: int
    prompt: Any
    completions: list[tuple[str, str]]
    expires_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The API shape of SPEC §7."""
        return {
            "assignment_id": self.assignment_id,
            "prompt": self.prompt,
            "completions": [{"id": cid, "text": body} for cid, body in self.completions],
            "expires_at": self.expires_at.isoformat(),
        }


def _task(row: Row[Any]) -> Task:
    texts = row.texts or {}
    order = list(row.display_order or [])
    return Task(row.id, row.prompt, [(cid, texts.get(cid, "")) for cid in order], row.expires_at)


def _claim(
    session: Session, project: LabelingProject, user_id: int, rng: random.Random
) -> Task | None:
    params = {"pid": project.id, "uid": user_id, "lease": project.settings.lease_minutes}
    gold_rate = project.settings.gold_rate
    if gold_rate > 0 and rng.random() < gold_rate:
        row = session.execute(_CLAIM_GOLD, params).first()
        if row is not None:
            return _task(row)
    row = session.execute(_CLAIM_REGULAR, params).first()
    return None if row is None else _task(row)


def next_task(
    session: Session, user: User, project_id: int, *, rng: random.Random | None = None
) -> Task | None:
    """The labeler's current task in an active project, or None when nothing is left.

    Returns the lease the labeler already holds when there is one (a reload burns no
    slot); otherwise reclaims the project's expired leases and leases the open prompt
    nearest completion, mixing in gold prompts at the project's ``gold_rate``.
    Raises NotFound / Forbidden (not a member) and ProjectClosed (not active).
    """

    def work() -> Task | None:
        try:
            project = labeling_project(session, user, project_id, lock_labeler=True)
            require_active(project)
        except DomainError:
            session.rollback()
            raise
        held = session.execute(_RECLAIM_AND_HELD, {"pid": project_id, "uid": user.id}).first()
        task = _task(held) if held is not None else _claim(session, project, user.id, rng or _rng)
        session.commit()
        return task

    return with_retry(session, work)

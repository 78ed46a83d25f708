"""A project's labeling progress (SPEC §7 ``GET /api/v1/projects/{id}/progress``).

Admins see the whole project: prompts by state, judgments, judgments per hour over the
last 24 hours, every labeler's counts and time per task. A labeler sees only their own
numbers (SPEC §1): ``prompts`` is then ``None`` and ``per_labeler`` lists only them.

Prompt states (gold prompts are counted apart, as ``gold``):
``pending``: no judgment and no open lease; ``in_progress``: some judgments or an open
lease, fewer than its target; ``complete``: at least ``target_labels`` judgments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.models import User
from app.services.accounts.policy import is_admin, visible_project

_STATES = text(
    """
    WITH leased AS (
      SELECT DISTINCT prompt_id FROM assignments
      WHERE project_id = :pid AND status = 'active' AND expires_at > now())
    SELECT count(*) AS total,
      count(*) FILTER (WHERE p.is_gold) AS gold,
      count(*) FILTER (WHERE NOT p.is_gold AND p.n_judgments >= p.target_labels) AS complete,
      count(*) FILTER (WHERE NOT p.is_gold AND p.n_judgments < p.target_labels
                       AND (p.n_judgments > 0 OR l.prompt_id IS NOT NULL)) AS in_progress,
      count(*) FILTER (WHERE NOT p.is_gold AND p.n_judgments = 0
                       AND l.prompt_id IS NULL) AS pending
    FROM prompts p LEFT JOIN leased l ON l.prompt_id = p.id
    WHERE p.project_id = :pid
    """
)
# :uid is NULL for the whole project, a user id for one labeler's own numbers.
_HOURLY = text(
    """
    WITH bounds AS (SELECT date_trunc('hour', now() AT TIME ZONE 'UTC') AS current_hour),
    recent AS (
      SELECT date_trunc('hour', j.created_at AT TIME ZONE 'UTC') AS hour
      FROM judgments j JOIN users u ON u.id = j.labeler_id, bounds
      WHERE j.project_id = :pid AND NOT u.is_external
        AND (CAST(:uid AS bigint) IS NULL OR j.labeler_id = :uid)
        AND j.created_at >= (bounds.current_hour - interval '23 hours') AT TIME ZONE 'UTC')
    SELECT h.hour, count(recent.hour) AS n
    FROM bounds, generate_series(bounds.current_hour - interval '23 hours',
                                 bounds.current_hour, interval '1 hour') AS h(hour)
    LEFT JOIN recent ON recent.hour = h.hour
    GROUP BY h.hour ORDER BY h.hour
    """
)
_TIMES = text(
    """
    SELECT count(*) AS judgments,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS median_ms,
           avg(duration_ms) AS mean_ms
    FROM judgments
    WHERE project_id = :pid AND (CAST(:uid AS bigint) IS NULL OR labeler_id = :uid)
    """
)
_LABELERS = text(
    """
    WITH judged AS (
      SELECT labeler_id AS id, count(*) AS judgments, max(created_at) AS last_at,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS median_ms,
             avg(duration_ms) AS mean_ms
      FROM judgments WHERE project_id = :pid GROUP BY labeler_id),
    skips AS (
      SELECT labeler_id AS id, count(*) AS skipped FROM assignments
      WHERE project_id = :pid AND status = 'skipped' GROUP BY labeler_id),
    people AS (
      SELECT user_id AS id FROM project_members WHERE project_id = :pid
      UNION SELECT id FROM judged UNION SELECT id FROM skips)
    SELECT u.username, u.is_external, coalesce(judged.judgments, 0) AS judgments,
           coalesce(skips.skipped, 0) AS skipped, judged.median_ms, judged.mean_ms,
           judged.last_at
    FROM people JOIN users u ON u.id = people.id
    LEFT JOIN judged ON judged.id = u.id LEFT JOIN skips ON skips.id = u.id
    WHERE CAST(:uid AS bigint) IS NULL OR u.id = :uid
    ORDER BY judgments DESC, u.username
    """
)


@dataclass(frozen=True)
class PromptStates:
    total: int
    pending: int
    in_progress: int
    complete: int
    gold: int


@dataclass(frozen=True)
class LabelerProgress:
    labeler: str
    external: bool
    judgments: int
    skipped: int
    median_seconds: float | None
    mean_seconds: float | None
    last_at: datetime | None


@dataclass(frozen=True)
class HourCount:
    """Judgments made in one hour: ``hour`` is its start, ISO 8601 in UTC (``…Z``)."""

    hour: str
    count: int


@dataclass(frozen=True)
class ProjectProgress:
    """``scope``: ``"project"`` (an admin's view) or ``"self"`` (a labeler's own).

    This is the answer of ``GET /api/v1/projects/{id}/progress`` as it is (its schema)."""

    project_id: int
    scope: str
    prompts: PromptStates | None
    judgments: int
    judgments_per_hour: list[HourCount]
    per_labeler: list[LabelerProgress]
    median_seconds: float | None
    mean_seconds: float | None

    @property
    def percent_complete(self) -> int:
        """Share of non-gold prompts that are complete, 0..100."""
        states = self.prompts
        labeled = states.total - states.gold if states else 0
        return round(100 * states.complete / labeled) if states and labeled else 0


def _seconds(ms: Any) -> float | None:
    return None if ms is None else round(float(ms) / 1000, 1)


def _hourly(session: Session, params: dict[str, Any]) -> list[HourCount]:
    """Judgments by hour (UTC), the last 24 hours oldest first, empty hours included.
    Imported judgments of external labelers are left out: they are not labeling work."""
    return [
        HourCount(row.hour.isoformat() + "Z", row.n) for row in session.execute(_HOURLY, params)
    ]


def _labelers(session: Session, params: dict[str, Any]) -> list[LabelerProgress]:
    return [
        LabelerProgress(
            labeler=row.username,
            external=row.is_external,
            judgments=row.judgments,
            skipped=row.skipped,
            median_seconds=_seconds(row.median_ms),
            mean_seconds=_seconds(row.mean_ms),
            last_at=row.last_at,
        )
        for row in session.execute(_LABELERS, params)
    ]


def project_progress(session: Session, user: User, project_id: int) -> ProjectProgress:
    """The progress ``user`` may see (NotFound for a project they are not in)."""
    visible_project(session, user, project_id)
    whole = is_admin(user)
    params = {"pid": project_id, "uid": None if whole else user.id}
    states = PromptStates(**session.execute(_STATES, params).one()._asdict()) if whole else None
    times = session.execute(_TIMES, params).one()
    return ProjectProgress(
        project_id=project_id,
        scope="project" if whole else "self",
        prompts=states,
        judgments=times.judgments,
        judgments_per_hour=_hourly(session, params),
        per_labeler=_labelers(session, params),
        median_seconds=_seconds(times.median_ms),
        mean_seconds=_seconds(times.mean_ms),
    )

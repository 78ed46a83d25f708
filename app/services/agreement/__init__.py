"""Agreement figures of a project (SPEC §6), computed from the judgments in the database.

The API's table is read by ``load.load_coded``: judgments grouped in SQL by their
ranking, reject flag and display order, their ids, prompts, labelers and durations as
packed integers (each distinct ranking, display order and gold ranking parsed once,
everything else gathered with numpy: no Python object per judgment). ``load_records``
keeps the record form for callers that filter judgments first (the runs page). The numbers
themselves come from the pure domain (``app.domain.project_summary``,
``app.domain.labeler_figures``) on an :class:`~app.domain.outcomes.OutcomeTable`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Project
from app.domain.agreement import InvalidAgreementData
from app.domain.errors import ValidationFailed
from app.domain.json_cache import JsonCache
from app.domain.labeler_figures import labeler_figures
from app.domain.outcome_columns import table_from_codes
from app.domain.outcomes import JudgmentRecord, OutcomeTable
from app.domain.project_summary import AGREEMENT_METHOD, project_summary, rounded
from app.domain.project_summary import outcome_table as outcome_table  # used by runs.view
from app.services.agreement.load import load_coded

BATCH_SIZE = 5000
FlagCounts = tuple[int, dict[str, int]]


# Plain SQL on the driver's cursor: about 2.5x less CPU than Core rows for 300k judgments.
RECORDS_SQL = """
SELECT u.username, p.external_id, j.ranking::text, j.reject_all, j.display_order::text,
       j.duration_ms, p.gold::text
FROM judgments j
JOIN users u ON u.id = j.labeler_id
JOIN prompts p ON p.id = j.prompt_id
WHERE j.project_id = %(project_id)s
ORDER BY j.id
"""


def load_records(session: Session, project_id: int) -> list[JudgmentRecord]:
    """Every judgment of the project as a :class:`JudgmentRecord`, in one query."""
    cache = JsonCache()
    tiers, order, name = cache.tiers, cache.order, cache.name
    records: list[JudgmentRecord] = []
    with session.connection().connection.driver_connection.cursor() as cursor:
        cursor.execute(RECORDS_SQL, {"project_id": project_id})
        while batch := cursor.fetchmany(BATCH_SIZE):
            records.extend(
                JudgmentRecord(name(n), p, None if reject else tiers(r), order(s), ms, tiers(g))
                for n, p, r, reject, s, ms, g in batch
            )
    return records


def load_table(session: Session, project_id: int) -> OutcomeTable:
    """Every judgment of the project as an OutcomeTable (``load.load_coded``'s queries)."""
    try:
        return table_from_codes(load_coded(session, project_id))
    except InvalidAgreementData as exc:
        raise ValidationFailed.single("judgments", str(exc)) from exc


def agreement_report(
    session: Session, project: Project, flagged: FlagCounts | None = None
) -> dict[str, Any]:
    """Everything ``GET /api/v1/projects/{id}/agreement`` answers (SPEC §6).

    ``flagged``: ``(suspects run id, judgments flagged per labeler)`` of the project's newest
    suspects run (``app.services.runs.suspects.latest_flags_per_labeler``): each labeler's
    entry then carries ``flagged`` (0 when none of theirs was), and the report
    ``suspects_run_id``; without one both are null."""
    table = load_table(session, project.id)
    report = {"project_id": project.id, **project_summary(table)}
    report["per_labeler"] = rounded(labeler_figures(table))
    run_id, counts = flagged if flagged is not None else (None, None)
    for entry in report["per_labeler"]:
        entry["flagged"] = None if counts is None else counts.get(entry["labeler"], 0)
    report["suspects_run_id"] = run_id
    report["method"] = dict(AGREEMENT_METHOD)
    return report

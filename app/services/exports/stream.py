"""A project's prompts with their completions and judgments, streamed in constant memory.

ONE SQL statement reads everything an export needs, so the whole export sees one
snapshot of the database even while labelers keep submitting. Prompts are sorted by
id first (narrow rows), then each one gathers its completions and judgments through
index lookups (``LATERAL``) as text arrays, which psycopg decodes much faster than
JSON; rankings come as JSON text, parsed once per distinct ranking. Rows reach Python
through a server-side cursor, ``BATCH_SIZE`` at a time.

Per-prompt index lookups keep the plan linear whatever the planner believes: a grouped
join planned on stale statistics (right after a large import) can turn quadratic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.json_cache import JsonCache
from app.domain.pairs import JudgmentData, PromptData

BATCH_SIZE = 500

PROMPTS_SQL = text(
    """
    SELECT p.external_id, p.prompt, p.gold::text,
           c.ids, c.texts, j.names, j.rankings, j.rejects
    FROM (SELECT id, external_id, prompt, gold FROM prompts
          WHERE project_id = :project_id ORDER BY id OFFSET 0) AS p
    CROSS JOIN LATERAL (
      SELECT array_agg(external_id ORDER BY position) AS ids,
             array_agg(text ORDER BY position) AS texts
      FROM completions WHERE prompt_id = p.id) AS c
    CROSS JOIN LATERAL (
      SELECT array_agg(u.username ORDER BY u.username) AS names,
             array_agg(j.ranking::text ORDER BY u.username) AS rankings,
             array_agg(j.reject_all ORDER BY u.username) AS rejects
      FROM judgments j JOIN users u ON u.id = j.labeler_id
      WHERE j.prompt_id = p.id) AS j
    ORDER BY p.id
    """
)


def _prompt_data(row: Any, cache: JsonCache) -> PromptData:
    external_id, prompt, gold, ids, texts, names, rankings, rejects = row
    judgments = []
    for name, ranking, reject_all in zip(names or (), rankings or (), rejects or (), strict=True):
        tiers = None if reject_all else cache.tiers(ranking)
        judgments.append(JudgmentData(cache.name(name), tiers, reject_all))
    return PromptData(
        prompt_id=external_id,
        prompt=prompt,
        completions=dict(zip(ids or (), texts or (), strict=True)),
        gold=cache.tiers(gold),
        judgments=judgments,
    )


def iter_prompts(
    session: Session, project_id: int, batch_size: int = BATCH_SIZE
) -> Iterator[PromptData]:
    """Yield the project's prompts as :class:`PromptData`, in id order."""
    statement = PROMPTS_SQL.execution_options(yield_per=batch_size)
    result = session.connection().execute(statement, {"project_id": project_id})
    cache = JsonCache()
    try:
        for row in result:
            yield _prompt_data(row, cache)
    finally:
        result.close()

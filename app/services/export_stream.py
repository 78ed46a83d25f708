"""A project's prompts with their completions and judgments, streamed in constant memory.

ONE SQL statement reads everything an export needs: each prompt row carries its
completions and judgments aggregated into arrays (grouped joins), so the whole
export sees one snapshot of the database even while labelers keep submitting, and the
rows come through a server-side cursor in batches (``yield_per``) in prompt-id order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, Subquery, Text, cast, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from app.db.models import Completion, Judgment, Prompt, User
from app.domain.pairs import JudgmentData, PromptData
from app.services.agreement_json import JsonCache

BATCH_SIZE = 500


def _completions_arrays(project_id: int) -> Subquery:
    """Per prompt: completion ids and texts as two text arrays, in import position order."""
    by_position = Completion.position
    return (
        select(
            Completion.prompt_id,
            func.array_agg(aggregate_order_by(Completion.external_id, by_position)).label("ids"),
            func.array_agg(aggregate_order_by(Completion.text, by_position)).label("texts"),
        )
        .join(Prompt, Prompt.id == Completion.prompt_id)
        .where(Prompt.project_id == project_id)
        .group_by(Completion.prompt_id)
        .subquery("c")
    )


def _judgments_arrays(project_id: int) -> Subquery:
    """Per prompt: labeler names, rankings (JSON text) and reject_all flags, by name."""
    by_name = User.username
    return (
        select(
            Judgment.prompt_id,
            func.array_agg(aggregate_order_by(User.username, by_name)).label("names"),
            func.array_agg(aggregate_order_by(cast(Judgment.ranking, Text), by_name)).label(
                "rankings"
            ),
            func.array_agg(aggregate_order_by(Judgment.reject_all, by_name)).label("rejects"),
        )
        .join(User, User.id == Judgment.labeler_id)
        .where(Judgment.project_id == project_id)
        .group_by(Judgment.prompt_id)
        .subquery("j")
    )


def prompts_statement(project_id: int) -> Select[Any]:
    """Every prompt of the project in id order, with its completions and judgments.

    Grouped joins (one pass over each table) rather than per-prompt subqueries, and
    text arrays rather than JSON documents, which psycopg decodes several times faster;
    rankings come as JSON text, parsed once per distinct ranking.
    """
    completions, judgments = _completions_arrays(project_id), _judgments_arrays(project_id)
    return (
        select(
            Prompt.external_id,
            Prompt.prompt,
            cast(Prompt.gold, Text),
            completions.c.ids,
            completions.c.texts,
            judgments.c.names,
            judgments.c.rankings,
            judgments.c.rejects,
        )
        .outerjoin(completions, completions.c.prompt_id == Prompt.id)
        .outerjoin(judgments, judgments.c.prompt_id == Prompt.id)
        .where(Prompt.project_id == project_id)
        .order_by(Prompt.id)
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
    """Yield the project's prompts as :class:`PromptData`, ``batch_size`` rows at a time."""
    statement = prompts_statement(project_id).execution_options(yield_per=batch_size)
    result = session.connection().execute(statement)
    cache = JsonCache()
    try:
        for row in result:
            yield _prompt_data(row, cache)
    finally:
        result.close()

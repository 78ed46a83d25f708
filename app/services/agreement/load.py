"""Read a project's judgments into an OutcomeTable with three small queries.

The judgments are grouped in SQL by (ranking, reject_all, display_order) texts: each
group's values come once, and its judgments' ids, prompts, labelers and durations as
packed big-endian integers (``int8send``/``int4send`` concatenated by ``string_agg``)
that numpy reads without a Python object per judgment. Prompts (database id, external
id, gold ranking) come sorted as the table wants them (external ids in code point
order: ``COLLATE "C"``), labeler names apart; the judgments are then put in the table's
order here: by prompt, and by judgment id within a prompt.
"""

from __future__ import annotations

from itertools import compress
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.domain.outcome_columns import CodedJudgments

# Grouped by the JSON texts (cheaper to hash and compare than jsonb values).
JUDGMENTS_SQL = """
SELECT j.ranking::text, j.reject_all, j.display_order::text,
       string_agg(int8send(j.id), ''::bytea), string_agg(int8send(j.prompt_id), ''::bytea),
       string_agg(int8send(j.labeler_id), ''::bytea),
       string_agg(int4send(coalesce(j.duration_ms, -1)), ''::bytea)
FROM judgments j
WHERE j.project_id = %(project_id)s
GROUP BY 1, 2, 3
"""
# Prompts in the table's order: external id in code point order (ties by id).
PROMPTS_SQL = """
SELECT string_agg(int8send(o.id), ''::bytea), array_agg(o.external_id), array_agg(o.gold)
FROM (
  SELECT p.id, p.external_id, p.gold::text AS gold
  FROM prompts p
  WHERE p.project_id = %(project_id)s OR p.id = ANY(%(also)s)
  ORDER BY p.external_id COLLATE "C", p.id
) AS o
"""
LABELERS_SQL = "SELECT id, username FROM users WHERE id = ANY(%(ids)s)"
NO_DURATION = -1  # durations are never negative (ck_judgments_duration_nonnegative)


def _packed(blobs: list[bytes], dtype: str) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype).astype(np.int64)


class _Prompts:
    """Prompt rows in the table's order: database ids, external ids, gold texts."""

    def __init__(self, cursor: Any, project_id: int, also: list[int]) -> None:
        cursor.execute(PROMPTS_SQL, {"project_id": project_id, "also": also})
        packed, external, golds = cursor.fetchone()
        self.ids = _packed([packed or b""], ">i8")
        self.external: list[str] = external or []
        self.golds: list[str | None] = golds or []
        self.by_id = np.argsort(self.ids)

    def rows_of(self, prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each prompt id's row, and the ids not among the rows."""
        ids = self.ids[self.by_id]
        at = np.minimum(np.searchsorted(ids, prompt), max(len(ids) - 1, 0))
        found = ids[at] == prompt if len(ids) else np.zeros(len(prompt), bool)
        return self.by_id[at] if len(ids) else at, np.unique(prompt[~found])


def _prompts(cursor: Any, project_id: int, prompt: np.ndarray) -> tuple[_Prompts, np.ndarray]:
    """The project's prompts (and any other prompt a judgment names), and each one's row."""
    prompts = _Prompts(cursor, project_id, [])
    row, missing = prompts.rows_of(prompt)
    if len(missing):
        prompts = _Prompts(cursor, project_id, missing.tolist())
        row, _ = prompts.rows_of(prompt)
    return prompts, row


def _table_prompts(prompts: _Prompts, row: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The external ids of prompts with judgments (rows of one id merged, as the table
    groups judgments by external id) and each row's index among them."""
    used = np.zeros(len(prompts.ids), bool)
    used[row] = True
    rows = np.flatnonzero(used)
    external = [prompts.external[r] for r in rows.tolist()]
    first = np.ones(len(rows), bool)
    first[1:] = [a != b for a, b in zip(external, external[1:], strict=False)]
    index = np.zeros(len(prompts.ids), np.int64)
    index[rows] = np.cumsum(first) - 1
    return list(compress(external, first)), index


def _distinct(values: list[str | None]) -> tuple[list[str | None], np.ndarray]:
    distinct = list(dict.fromkeys(values))
    index = {value: i for i, value in enumerate(distinct)}
    return distinct, np.asarray([index[v] for v in values], dtype=np.int64)


def load_coded(session: Session, project_id: int) -> CodedJudgments:
    """Every judgment of the project, coded and in the table's order."""
    driver = session.connection().connection.driver_connection
    with driver.cursor(binary=True) as cursor:
        cursor.execute(JUDGMENTS_SQL, {"project_id": project_id})
        groups = cursor.fetchall()
        sizes = [len(g[3]) // 8 for g in groups]
        group = np.repeat(np.arange(len(groups), dtype=np.int64), sizes)
        judgment_id = _packed([g[3] for g in groups], ">i8")
        prompt = _packed([g[4] for g in groups], ">i8")
        labeler = _packed([g[5] for g in groups], ">i8")
        duration = _packed([g[6] for g in groups], ">i4")
        prompts, row = _prompts(cursor, project_id, prompt)
        labeler_ids, judgment_labeler = np.unique(labeler, return_inverse=True)
        cursor.execute(LABELERS_SQL, {"ids": labeler_ids.tolist()})
        name_of = dict(cursor.fetchall())
    prompt_ids, index = _table_prompts(prompts, row)
    judgment_prompt = index[row]
    order = np.lexsort((judgment_id, judgment_prompt))
    judgment_prompt, row, group = judgment_prompt[order], row[order], group[order]
    starts = np.flatnonzero(np.r_[True, judgment_prompt[1:] != judgment_prompt[:-1]])
    rankings, ranking_code = _distinct([g[0] for g in groups])
    orders, order_code = _distinct([g[2] for g in groups])
    golds, gold_code = _distinct(prompts.golds)
    seconds = duration[order].astype(float)
    seconds[seconds == NO_DURATION] = np.nan
    return CodedJudgments(
        prompt_ids=prompt_ids,
        judgment_prompt=judgment_prompt,
        labelers=[name_of[i] for i in labeler_ids.tolist()],
        judgment_labeler=judgment_labeler.reshape(-1)[order],
        rankings=rankings,
        ranking_code=ranking_code[group],
        rejects=np.asarray([bool(g[1]) for g in groups], dtype=bool)[group],
        orders=orders,
        order_code=order_code[group],
        seconds=seconds / 1000,
        golds=golds,
        gold_code=gold_code[row[starts]] if len(row) else np.zeros(0, np.int64),
    )

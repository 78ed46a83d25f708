"""Read a project's judgments into an OutcomeTable with three small queries.

The judgments are grouped in SQL by (ranking, reject_all, display_order): each group's
values come once, as text, and its judgments' ids, prompts, labelers and durations as
packed big-endian integers (``int8send``/``int4send`` concatenated by ``string_agg``)
that numpy reads without a Python object per judgment. Prompts (external id and gold
ranking, grouped by gold) and labeler names are read apart, and the judgments are put
in the table's order here, grouped by prompt (external ids in code point order, as
``ORDER BY external_id COLLATE "C"`` sorts them) and by judgment id within a prompt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.domain.outcome_columns import CodedJudgments

JUDGMENTS_SQL = """
SELECT j.ranking::text, j.reject_all, j.display_order::text,
       string_agg(int8send(j.id), ''::bytea), string_agg(int8send(j.prompt_id), ''::bytea),
       string_agg(int8send(j.labeler_id), ''::bytea),
       string_agg(int4send(coalesce(j.duration_ms, -1)), ''::bytea)
FROM judgments j
WHERE j.project_id = %(project_id)s
GROUP BY j.ranking, j.reject_all, j.display_order
"""
# Both aggregates of a group read its rows in the same order: ids and names stay aligned.
PROMPTS_SQL = """
SELECT p.gold::text, string_agg(int8send(p.id), ''::bytea), array_agg(p.external_id)
FROM prompts p
WHERE {where}
GROUP BY p.gold
"""
LABELERS_SQL = "SELECT id, username FROM users WHERE id = ANY(%(ids)s)"
NO_DURATION = -1  # durations are never negative (ck_judgments_duration_nonnegative)


def _packed(blobs: list[bytes], dtype: str) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype).astype(np.int64)


class _Prompts:
    """Prompt rows: database ids (sorted), external ids and the gold group of each."""

    def __init__(self) -> None:
        self.ids, self.external, self.gold = np.zeros(0, np.int64), [], np.zeros(0, np.int64)
        self.golds: list[str | None] = []

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        ids, gold = [self.ids], [self.gold]
        for gold_text, packed, external in rows:
            ids.append(_packed([packed], ">i8"))
            gold.append(np.full(len(external), len(self.golds), np.int64))
            self.external.extend(external)
            self.golds.append(gold_text)
        order = np.argsort(np.concatenate(ids), kind="stable")
        self.ids, self.gold = np.concatenate(ids)[order], np.concatenate(gold)[order]
        self.external = [self.external[i] for i in order.tolist()]

    def rows_of(self, prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each prompt id's row, and the ids not among the rows."""
        at = np.minimum(np.searchsorted(self.ids, prompt), max(len(self.ids) - 1, 0))
        found = self.ids[at] == prompt if len(self.ids) else np.zeros(len(prompt), bool)
        return at, np.unique(prompt[~found])


def _prompts(cursor: Any, project_id: int, prompt: np.ndarray) -> tuple[_Prompts, np.ndarray]:
    """The project's prompts (and any other prompt a judgment names), and each row."""
    prompts = _Prompts()
    cursor.execute(PROMPTS_SQL.format(where="p.project_id = %(p)s"), {"p": project_id})
    prompts.add(cursor.fetchall())
    row, missing = prompts.rows_of(prompt)
    if len(missing):
        cursor.execute(PROMPTS_SQL.format(where="p.id = ANY(%(p)s)"), {"p": missing.tolist()})
        prompts.add(cursor.fetchall())
        row, _ = prompts.rows_of(prompt)
    return prompts, row


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
    used = np.unique(row)
    external = [prompts.external[i] for i in used.tolist()]
    prompt_ids = sorted(set(external))
    index = {name: i for i, name in enumerate(prompt_ids)}
    rank = np.fromiter(map(index.__getitem__, external), np.int64, count=len(external))
    judgment_prompt = rank[np.searchsorted(used, row)]
    order = np.lexsort((judgment_id, judgment_prompt))
    judgment_prompt, row, group = judgment_prompt[order], row[order], group[order]
    starts = np.flatnonzero(np.r_[True, judgment_prompt[1:] != judgment_prompt[:-1]])
    rankings, ranking_code = _distinct([g[0] for g in groups])
    orders, order_code = _distinct([g[2] for g in groups])
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
        golds=prompts.golds,
        gold_code=prompts.gold[row[starts]] if len(row) else np.zeros(0, np.int64),
    )

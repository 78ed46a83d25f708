"""Writing checked import rows: batches COPied through a staging table, on a second
thread while the file is still being read; each row's COPY text is rendered on the
reading thread (``copy_rows``), and that thread hands the GIL over often
(``YIELD_EVERY``), so the writer keeps the database busy. Flushes, never commits: the
transaction belongs to ``import_file``."""

from __future__ import annotations

import time
from functools import lru_cache
from queue import Queue
from threading import Thread
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import User
from app.domain.figures import prompt_figures
from app.domain.importing.rows import ImportRow
from app.services.importing.copy_rows import CopyRow, copy_line, json_text, render_completions

BATCH_SIZE = 1000
YIELD_EVERY = 10
"""The reading thread hands the GIL to the writer thread (``time.sleep(0)``) every this
many rows. The writer needs it only briefly, after each answer of the database, but
without the hand-over it waited behind the parsing: measured with ``pg_stat_activity``,
the database then sat "idle in transaction" for about a third of a 100k-prompt import,
and the import took 6.5-7 s instead of 5 s (``sys.setswitchinterval`` did not help)."""

_STAGE = "prefloop_import_stage"
_CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
    external_id text, prompt jsonb, metadata jsonb, gold jsonb, is_gold bool,
    target_labels int2, slots_taken int2, n_judgments int2, agreement float8, kendall_w float8
) ON COMMIT DROP
"""
_STAGE_COLUMNS = (
    "external_id, prompt, metadata, gold, is_gold, "
    "target_labels, slots_taken, n_judgments, agreement, kendall_w"
)
_COPY_STAGE = f"COPY {_STAGE} ({_STAGE_COLUMNS}) FROM STDIN"
_INSERT_PROMPTS = f"""
INSERT INTO prompts (project_id, {_STAGE_COLUMNS})
SELECT %s, {_STAGE_COLUMNS} FROM {_STAGE}
ON CONFLICT (project_id, external_id) DO NOTHING
RETURNING external_id, id
"""
_COPY_COMPLETIONS = (
    "COPY completions (prompt_id, external_id, position, text, model, metadata) FROM STDIN"
)
_COPY_JUDGMENTS = (
    "COPY judgments (project_id, prompt_id, labeler_id, ranking, reject_all) FROM STDIN"
)


_NO_FIGURES = prompt_figures([], [])


@lru_cache(maxsize=4096)
def _figures_by_position(rankings: tuple[tuple[tuple[int, ...], ...], ...], n: int) -> dict:
    """``prompt_figures`` with completions named by position: the figures do not depend
    on the names, and the same few ranking patterns come back on prompt after prompt."""
    named = [[[str(i) for i in tier] for tier in ranking] for ranking in rankings]
    return prompt_figures(named, [str(i) for i in range(n)])


def _row_figures(row: ImportRow) -> dict:
    position = {c.external_id: i for i, c in enumerate(row.completions)}
    rankings = tuple(
        tuple(tuple(position[cid] for cid in tier) for tier in j.ranking)
        for j in row.judgments
        if j.ranking is not None
    )
    return _figures_by_position(rankings, len(row.completions))


def copy_row(row: ImportRow, k: int) -> CopyRow:
    """``row`` with its COPY text (for the staging table and for ``completions``)."""
    return CopyRow(row, copy_line(_prompt_record(row, k)), render_completions(row))


def _prompt_record(row: ImportRow, k: int) -> tuple[Any, ...]:
    """One row of the staging table (``_STAGE_COLUMNS``)."""
    n = len(row.judgments)
    figures = _NO_FIGURES if n < 2 else _row_figures(row)  # the figures need two rankings
    return (
        row.external_id,
        json_text(row.prompt),
        json_text(row.metadata),
        json_text(row.gold),
        row.gold is not None,
        max(k, n),
        n,
        n,
        figures["pairwise_agreement"],
        figures["kendall_w"],
    )


class Writer:
    """Buffers valid rows and writes them in bulk; flushes, never commits.

    A batch of prompts is COPied into a temporary staging table, then moved with one
    ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` (which tells new from
    existing ids); completions and judgments of the new prompts are COPied directly.
    """

    def __init__(self, session: Session, project_id: int, k: int) -> None:
        self.session = session
        self.project_id = project_id
        self.k = k
        self.labelers: dict[str, int] = {}
        self.imported = self.skipped = self.judgments = 0

    def write(self, batch: list[CopyRow]) -> None:
        self._ensure_labelers({j.labeler for r in batch for j in r.row.judgments})
        driver = self.session.connection().connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(_CREATE_STAGE)
            cursor.execute(f"TRUNCATE {_STAGE}")
            with cursor.copy(_COPY_STAGE) as copy:
                copy.write("".join([r.prompt for r in batch]))
            cursor.execute(_INSERT_PROMPTS, [self.project_id])
            new_ids: dict[str, int] = dict(cursor.fetchall())
            new = [r for r in batch if r.row.external_id in new_ids]
            self.imported += len(new)
            self.skipped += len(batch) - len(new)
            with cursor.copy(_COPY_COMPLETIONS) as copy:
                copy.write("".join([r.completion_lines(new_ids[r.row.external_id]) for r in new]))
            if any(r.row.judgments for r in new):
                self._copy_judgments(cursor, [r.row for r in new], new_ids)

    def _copy_judgments(self, cursor: Any, rows: list[ImportRow], ids: dict[str, int]) -> None:
        with cursor.copy(_COPY_JUDGMENTS) as copy:
            for row in rows:
                for j in row.judgments:
                    copy.write_row(
                        (
                            self.project_id,
                            ids[row.external_id],
                            self.labelers[j.labeler],
                            json_text(j.ranking),
                            j.reject_all,
                        )
                    )
                    self.judgments += 1

    def _ensure_labelers(self, names: set[str]) -> None:
        """Get or create the external labelers (race-safe: ON CONFLICT DO NOTHING)."""
        missing = sorted(names - self.labelers.keys())
        if not missing:
            return
        new = [
            {
                "username": name,
                "password_hash": None,
                "role": "labeler",
                "is_active": True,
                "is_external": True,
            }
            for name in missing
        ]
        self.session.execute(
            pg_insert(User.__table__).on_conflict_do_nothing(index_elements=["username"]), new
        )
        found = self.session.execute(
            select(User.username, User.id).where(User.username.in_(missing))
        )
        self.labelers.update(found.tuples().all())


class Pipeline:
    """Hands full batches to the writer on a second thread, so that the database stores
    one batch while Python reads and checks the next. At most two batches wait in the
    queue, so memory stays bounded whatever the size of the file. The session is used
    by the writer thread only, until ``finish`` has joined it."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.batch: list[CopyRow] = []
        self.queue: Queue[list[CopyRow] | None] = Queue(maxsize=2)
        self.failure: BaseException | None = None
        self.thread = Thread(target=self._drain, name="prefloop-import-writer", daemon=True)
        self.thread.start()

    def add(self, row: ImportRow) -> None:
        self.batch.append(copy_row(row, self.writer.k))
        if len(self.batch) % YIELD_EVERY == 0:
            time.sleep(0)  # let the writer thread take the GIL (see YIELD_EVERY)
        if len(self.batch) >= BATCH_SIZE:
            self.queue.put(self.batch)
            self.batch = []

    def _drain(self) -> None:
        while (rows := self.queue.get()) is not None:
            if self.failure is None:  # after a failure, only empty the queue
                try:
                    self.writer.write(rows)
                except BaseException as exc:  # re-raised by finish(), on the caller's thread
                    self.failure = exc

    def finish(self, *, write_rest: bool) -> None:
        """Write the last partial batch (or drop it) and wait for the writer; re-raise
        what made a write fail. Safe to call twice."""
        if self.thread.is_alive():
            if write_rest and self.batch:
                self.queue.put(self.batch)
            self.queue.put(None)
            self.thread.join()
        if self.failure is not None:
            raise self.failure

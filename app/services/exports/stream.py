"""A project's prompts with their completions and judgments, streamed in constant memory.

ONE SQL statement reads everything an export needs, so the whole export sees one
snapshot of the database even while labelers keep submitting. Prompts are sorted by
id first (narrow rows), then each one gathers its completions and judgments through
index lookups (``LATERAL``) as joined strings of JSON (see ``PromptRow``): a row is a
tuple of strings, cheaper to decode than arrays, and the texts come JSON-encoded, as the
lines need them; rankings come as JSON text, parsed once per distinct pattern; labelers come as ids
(joining ``users`` per prompt doubled the query's cost) and are named from one small
query. Rows reach Python through a server-side cursor, ``BATCH_SIZE`` at a time, read
ahead on a second thread. JIT compilation is off for the query (``NO_JIT_SQL``).

Per-prompt index lookups keep the plan linear whatever the planner believes: a grouped
join planned on stale statistics (right after a large import) can turn quadratic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from queue import Full, Queue
from threading import Event, Thread
from typing import Any

from sqlalchemy.orm import Session

BATCH_SIZE = 1000
READ_AHEAD = 4  # batches fetched ahead of the consumer

PROMPTS_SQL = """
    SELECT to_json(p.external_id)::text,
           CASE WHEN jsonb_typeof(p.prompt) = 'string' THEN p.prompt::text END,
           CASE WHEN jsonb_typeof(p.prompt) <> 'string' THEN p.prompt END,
           p.gold::text, c.ids, c.texts, j.labelers, j.rankings, j.rejects
    FROM (SELECT id, external_id, prompt, gold FROM prompts
          WHERE project_id = %(project_id)s ORDER BY id OFFSET 0) AS p
    CROSS JOIN LATERAL (
      SELECT string_agg(to_json(external_id)::text, E'\\x1f' ORDER BY position) AS ids,
             string_agg(to_json(text)::text, E'\\x1f' ORDER BY position) AS texts
      FROM completions WHERE prompt_id = p.id) AS c
    CROSS JOIN LATERAL (
      SELECT string_agg(labeler_id::text, ',') AS labelers,
             string_agg(coalesce(ranking::text, ''), E'\\x1f') AS rankings,
             string_agg(CASE WHEN reject_all THEN 't' ELSE 'f' END, '') AS rejects
      FROM judgments WHERE prompt_id = p.id) AS j
    ORDER BY p.id
"""
# The query's cost estimate (per-prompt index lookups over a whole project) sets off JIT
# compilation, which costs PostgreSQL seconds of CPU (about a fifth of the query's on 1M
# pairs) and saves nothing on index lookups; for this transaction only.
NO_JIT_SQL = "SET LOCAL jit = off"
NAMES_SQL = """
    SELECT id, username FROM users
    WHERE id IN (SELECT labeler_id FROM judgments WHERE project_id = %(project_id)s)
"""

# One row per prompt, every value a str or None (no per-row lists for Python to build):
# the JSON of external_id; the JSON of the prompt text (None for a chat prompt); the chat
# messages (None for a text prompt); the gold ranking's JSON; the JSON of the completion
# ids and of their texts (by position, joined by SEP); the labeler ids (joined by ","),
# ranking JSON texts ("" for none, joined by SEP) and reject_all flags ("t"/"f", one
# character each), aligned; None when the prompt has none. PostgreSQL's JSON of a string
# (``to_json``, jsonb's output) escapes exactly what Python's ``json`` does (ensure_ascii
# off): ``"``, ``\``, and control characters (``\b \f \n \r \t``, else
# ``\u00xx``), so SEP (U+001F) never occurs inside a value.
SEP = "\x1f"
PromptRow = tuple[Any, ...]


def iter_prompt_rows(
    session: Session, project_id: int, batch_size: int = BATCH_SIZE
) -> Iterator[PromptRow]:
    """Yield the project's prompts as plain rows (see ``PromptRow``), in id order.

    A binary server-side cursor of the driver (plain tuples, no Row objects) is read
    ahead by a second thread, so PostgreSQL computes the next batches while this thread
    turns the current one into lines. Only that thread uses the connection until the generator
    ends or is closed (which stops and joins it)."""
    driver = session.connection().connection.driver_connection
    driver.execute(NO_JIT_SQL)
    with driver.cursor(name="prefloop_export_prompts", binary=True) as cursor:
        cursor.execute(PROMPTS_SQL, {"project_id": project_id})
        reader = _ReadAhead(lambda: cursor.fetchmany(batch_size))
        try:
            while batch := reader.next_batch():
                yield from batch
        finally:
            reader.stop()


class _ReadAhead:
    """Batches fetched on a daemon thread, at most ``READ_AHEAD`` waiting."""

    def __init__(self, fetch: Callable[[], list[PromptRow]]) -> None:
        self.fetch = fetch
        self.batches: Queue[list[PromptRow] | BaseException] = Queue(maxsize=READ_AHEAD)
        self.stopping = Event()
        self.thread = Thread(target=self._run, name="prefloop-export-read", daemon=True)
        self.thread.start()

    def _put(self, item: list[PromptRow] | BaseException) -> None:
        while not self.stopping.is_set():
            try:
                self.batches.put(item, timeout=0.1)
                return
            except Full:
                continue

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.fetch()
                self._put(batch)
                if not batch:
                    return
        except BaseException as exc:  # re-raised on the consuming thread
            self._put(exc)

    def next_batch(self) -> list[PromptRow]:
        item = self.batches.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


class LabelerNames(dict[int, str]):
    """Labeler id -> username. Read BEFORE the prompts' cursor opens (usernames never
    change; a user deleted since took their judgments along); a labeler who judged for
    the first time in between is looked up when first met."""

    def __init__(self, session: Session, project_id: int) -> None:
        super().__init__()
        self.cursor = session.connection().connection.driver_connection.cursor()
        self.cursor.execute(NAMES_SQL, {"project_id": project_id})
        self.update(self.cursor.fetchall())

    def __missing__(self, labeler_id: int) -> str:
        self.cursor.execute("SELECT username FROM users WHERE id = %s", [labeler_id])
        (name,) = self.cursor.fetchone() or (f"#{labeler_id}",)
        self[labeler_id] = name
        return name

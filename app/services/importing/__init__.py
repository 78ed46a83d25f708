"""Importing prompts (SPEC §3): one service for the API, the admin page and the CLI.

An import is all or nothing. The file is read once, line by line; valid records are
written in batches inside ONE transaction while the rest of the file is still being
checked, and the first problem stops the writing. At the end, any problem rolls the
whole transaction back and every problem found (up to 100) is reported with its line
and field; otherwise the transaction commits. Prompt ids already in the project are
skipped (``ON CONFLICT DO NOTHING``), and so are their judgments: re-importing a file
is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.orm import Session

from app.db.models import Project
from app.db.models.projects import ProjectStatus
from app.domain.errors import Conflict
from app.domain.importing.file import check_options, consume, refusal
from app.domain.importing.formats import DEFAULT_PAIRS_LABELER, parse
from app.domain.importing.reader import read_lines
from app.services.importing.writer import Pipeline, Writer
from app.services.projects import settings_of


@dataclass(frozen=True)
class ImportResult:
    """``imported``: new prompts; ``skipped``: prompts whose id was already there."""

    imported: int
    skipped: int
    judgments: int


def _check_request(project: Project, fmt: str, labeler: str) -> None:
    if project.status == ProjectStatus.archived.value:
        raise Conflict("the project is archived: unarchive it before importing")
    check_options(fmt, labeler)


def import_file(
    session: Session,
    project: Project,
    stream: BinaryIO,
    fmt: str = "jsonl",
    *,
    labeler: str = DEFAULT_PAIRS_LABELER,
) -> ImportResult:
    """Import a file (plain or gzip; seekable) in ``fmt``: jsonl, csv or pairs.

    ``labeler`` names the external labeler (``ext:…``) of the judgments that
    preference pairs carry. Commits and returns the counts, or rolls back and raises
    ValidationFailed listing every problem (``details: [{line, field, message}]``).
    """
    _check_request(project, fmt, labeler)
    writer = Writer(session, project.id, settings_of(project).labels_per_prompt)
    pipeline = Pipeline(writer)
    try:
        records = parse(fmt, read_lines(stream), labeler=labeler)
        problems, repeats = consume(records, pipeline.add)
        pipeline.finish(write_rest=not problems)
        if problems:
            raise refusal(problems)
        session.commit()
    except BaseException:
        try:
            pipeline.finish(write_rest=False)  # the writer must stop before the rollback
        finally:
            session.rollback()
        raise
    return ImportResult(writer.imported, writer.skipped + repeats, writer.judgments)

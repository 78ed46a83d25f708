"""A whole import file: its records in order, repeats, the cap on problems (SPEC §3).

``consume`` hands each valid record on while no problem has been seen, so a writer can
store a long file while the rest of it is still being checked; ``refusal`` is the one
error that lists what was found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from app.domain.errors import Detail, Problems, ValidationFailed, detail
from app.domain.importing.formats import DEFAULT_PAIRS_LABELER, FORMATS, Parsed
from app.domain.importing.rows import ImportRow, check_labeler

MAX_PROBLEMS = 100
"""An import stops checking after this many problems."""


def check_options(fmt: str, labeler: str = DEFAULT_PAIRS_LABELER) -> None:
    """The import's own options: a known format, and an external labeler name."""
    if fmt not in FORMATS:
        raise ValidationFailed.single("format", f"must be one of {', '.join(FORMATS)}")
    problems = Problems()
    check_labeler(problems, labeler, "labeler")
    problems.raise_if_any()


def consume(
    records: Iterable[Parsed], add: Callable[[ImportRow], None]
) -> tuple[list[Detail], int]:
    """Pass the valid records to ``add`` until the first problem; return the problems
    (at most 100) and how many records repeated an earlier one (skipped)."""
    problems: list[Detail] = []
    first_line: dict[str, int] = {}
    repeats = 0
    for record in records:
        if isinstance(record, list):
            problems.extend(record)
        elif record.external_id in first_line:
            earlier = first_line[record.external_id]
            if record.id_from == "content":
                repeats += 1
            elif record.id_from == "prompt text":
                message = f"the same prompt text as line {earlier}; add an id column"
                problems.append(detail("prompt", message, record.line))
            else:
                message = f"duplicate prompt id {record.external_id!r} (first on line {earlier})"
                problems.append(detail("id", message, record.line))
        else:
            first_line[record.external_id] = record.line
            if not problems:
                add(record)
        if len(problems) >= MAX_PROBLEMS:
            return problems[:MAX_PROBLEMS], repeats
    if not first_line and not problems:
        problems.append(detail("file", "the file holds no records"))
    return problems, repeats


def refusal(details: list[Detail]) -> ValidationFailed:
    """The error of a refused import: every problem, and the one summary after a prefix."""
    problems = Problems()
    problems.extend(details)
    return problems.error(
        prefix="import refused, nothing was written: ", truncated=len(details) >= MAX_PROBLEMS
    )

"""Import rows as PostgreSQL ``COPY`` text, rendered on the thread that reads the file,
so that the writer thread only joins ready strings and sends them.

Text format: fields separated by tabs, rows ended by a newline, NULL as ``\\N``, and a
backslash, newline, carriage return or tab inside a value escaped with a backslash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.domain.importing.rows import ImportRow

PROMPT_ID = "\x00"
"""Stands for the prompt's database id in its completion lines until the id is known:
no imported text holds NUL (the import refuses it)."""


_encode = json.JSONEncoder(ensure_ascii=False).encode


def json_text(value: Any) -> str | None:
    """A JSON value's text for a jsonb column (None stays SQL NULL)."""
    if value is None:
        return None
    return "{}" if value == {} else _encode(value)  # most metadata is empty


def field(value: Any) -> str:
    """One value as COPY text."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value:
            value = value.replace("\\", "\\\\")
        if "\n" in value:
            value = value.replace("\n", "\\n")
        if "\r" in value:
            value = value.replace("\r", "\\r")
        if "\t" in value:
            value = value.replace("\t", "\\t")
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    return repr(value)  # int, or float (its shortest repr reads back exactly)


def copy_line(values: tuple[Any, ...]) -> str:
    """One row of COPY text."""
    return "\t".join([field(v) for v in values]) + "\n"


def render_completions(row: ImportRow) -> str:
    """``row``'s completions as COPY lines of (prompt_id, external_id, position, text,
    model, metadata), each starting with ``PROMPT_ID``."""
    return "".join(
        [
            f"{PROMPT_ID}\t{field(c.external_id)}\t{position}\t{field(c.text)}\t"
            f"{field(c.model)}\t{field(json_text(c.metadata))}\n"
            for position, c in enumerate(row.completions)
        ]
    )


@dataclass(frozen=True, slots=True)
class CopyRow:
    """A checked row with its prompt's COPY line (for the staging table) and its
    completions' COPY lines."""

    row: ImportRow
    prompt: str
    completions: str

    def completion_lines(self, prompt_id: int) -> str:
        return self.completions.replace(PROMPT_ID, str(prompt_id))

"""Numbered JSON lines, read one way: the export and prompt readers (``training.data``) and
the app's reader of a suspects run's ``suspects.jsonl`` (``app.domain.suspects``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def numbered_rows(
    lines: Iterable[str], invalid: Callable[[int, json.JSONDecodeError], Exception]
) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded value)`` for each non-blank line, numbered from 1; a line that
    is not JSON raises ``invalid(number, error)``, the caller's own error type and wording."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise invalid(number, exc) from exc

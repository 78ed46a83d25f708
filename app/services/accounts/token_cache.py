"""A short-lived, in-process memory of which user a token resolved to, so that the
labeling loop's requests do not each pay a token lookup (hash index, join, ORM load).

An entry lives ``TTL_S`` (one second). Revoking a token or deactivating a user in this
process forgets every entry at once (``forget_all``), and a lookup that was already under
way when that happened is not remembered (the generation check), so those changes take
effect on the next request. A change made by another process (another web worker, the
CLI) takes effect within ``TTL_S``. Only successful lookups are remembered.
"""

from __future__ import annotations

import time
from typing import Any

TTL_S = 1.0
MAX_ENTRIES = 10_000

_entries: dict[str, tuple[float, dict[str, Any]]] = {}
_generation = 0


def generation() -> int:
    """Read before a lookup and hand to ``remember``: a ``forget_all`` in between wins."""
    return _generation


def recall(digest: str) -> dict[str, Any] | None:
    """The remembered column values of the user behind ``digest``, if still fresh."""
    entry = _entries.get(digest)
    if entry is None or entry[0] <= time.monotonic():
        return None
    return entry[1]


def remember(digest: str, values: dict[str, Any], seen_generation: int) -> None:
    if seen_generation != _generation:
        return
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[digest] = (time.monotonic() + TTL_S, values)


def forget(digest: str) -> None:
    _entries.pop(digest, None)


def forget_all() -> None:
    """Revocation, deactivation: no remembered token outlives this call."""
    global _generation
    _generation += 1
    _entries.clear()

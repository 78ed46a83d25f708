"""Parse the JSON of rankings and display orders once per distinct value.

A project's judgments repeat a handful of rankings (13 weak orders of 3 completions)
and labeler names, so the loaders read them as text and share one immutable copy of
each distinct value: fewer objects, and no JSON parsing per judgment.
"""

from __future__ import annotations

import json
from typing import Any

Tiers = tuple[tuple[str, ...], ...]


class JsonCache:
    """Shared, immutable values for repeated JSON texts and names."""

    def __init__(self) -> None:
        self._tiers: dict[str, Tiers] = {}
        self._orders: dict[str, tuple[str, ...] | None] = {}
        self._names: dict[str, str] = {}

    def tiers(self, raw: str | None) -> Tiers | None:
        """A ranking (list of tiers) from its JSON text; None stays None."""
        if raw is None:
            return None
        value = self._tiers.get(raw)
        if value is None:
            value = self._tiers[raw] = tuple(tuple(tier) for tier in json.loads(raw))
        return value

    def order(self, raw: str | None) -> tuple[str, ...] | None:
        """A display order as completion ids; None when unknown or not a list of ids."""
        if raw is None:
            return None
        if raw not in self._orders:
            parsed: Any = json.loads(raw)
            ok = isinstance(parsed, list) and all(isinstance(c, str) for c in parsed)
            self._orders[raw] = tuple(parsed) if ok and parsed else None
        return self._orders[raw]

    def name(self, name: str) -> str:
        """One shared string per labeler name."""
        return self._names.setdefault(name, name)

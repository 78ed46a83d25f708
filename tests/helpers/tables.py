"""Outcome tables and rankings for the agreement and export tests (pure: no database)."""

from __future__ import annotations

import random

import numpy as np

from app.domain.outcomes import OutcomeTable

TABLE_ARRAYS = (
    "n_completions",
    "unit_offset",
    "unit_gold",
    "judgment_labeler",
    "judgment_prompt",
    "first_shown_on_top",
    "seconds",
)
"""The per-prompt, per-unit and per-judgment arrays of an :class:`OutcomeTable`."""


def random_tiers(rng: random.Random, ids: str | list[str]) -> list[list[str]]:
    """A random ranking of ``ids`` (one completion id each), with ties about 30% of the time."""
    tiers: list[list[str]] = []
    for cid in rng.sample(list(ids), len(ids)):
        if tiers and rng.random() < 0.3:
            tiers[-1].append(cid)
        else:
            tiers.append([cid])
    return tiers


def assert_same_table(table: OutcomeTable, expected: OutcomeTable) -> None:
    """Ids, labelers, every array and every block of ``table`` equal ``expected``'s."""
    assert table.prompt_ids == expected.prompt_ids and table.labelers == expected.labelers
    for name in TABLE_ARRAYS:
        np.testing.assert_array_equal(getattr(table, name), getattr(expected, name), name)
    assert sorted(table.blocks) == sorted(expected.blocks)
    for k, block in expected.blocks.items():
        for name in ("judgment", "prompt", "tiers"):
            np.testing.assert_array_equal(getattr(table.blocks[k], name), getattr(block, name))

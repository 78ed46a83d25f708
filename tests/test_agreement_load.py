"""The agreement API's table, read from the database by ``load_table`` (judgments grouped
by ranking and display order, packed integer columns), equals the table of the same
judgments read as records, on data that exercises every column."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from app.domain.errors import ValidationFailed
from app.domain.outcomes import OutcomeTable
from app.services import agreement
from tests.helpers.judged import prompt, seed_project
from tests.helpers.tables import assert_same_table, random_tiers

# Code point order differs from import (id) order and from a locale's order.
EXTERNAL_IDS = ["b", "B", "a", "10", "9", "é", "e", "Z", "z1", "z10", "z2"]


def _records(seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for n, pid in enumerate(EXTERNAL_IDS * 4):
        ids = "abcde"[: rng.randint(2, 5)]
        names = rng.sample("uvwxyz", rng.randint(1, 4))
        judgments = {m: "reject" if rng.random() < 0.1 else random_tiers(rng, ids) for m in names}
        gold = {"gold": random_tiers(rng, ids)} if rng.random() < 0.3 else {}
        name = f"{pid}-{n % 3}" if n >= len(EXTERNAL_IDS) else pid
        records.append(prompt(name, ids, judgments, **gold))
    return records


def _vary_judgments(db: Any, project_id: int, seed: int = 4) -> None:
    """Durations (some unknown) and display orders of every kind the figures read."""
    rng = random.Random(seed)
    ids = db.scalars(
        text("SELECT id FROM judgments WHERE project_id = :p ORDER BY id"), {"p": project_id}
    ).all()
    rng.shuffle(ids)  # rows rewritten out of id order: a scan no longer meets them in it
    for jid in ids:
        shown = rng.choice([None, "[]", '"x"', '["a"]', '["b", "a"]', '["c", "a", "b"]'])
        ms = rng.choice([None, 0, rng.randint(1, 90_000)])
        db.execute(
            text("UPDATE judgments SET duration_ms = :ms, display_order = :s WHERE id = :id"),
            {"ms": ms, "s": shown, "id": jid},
        )


def _from_records(db: Any, project_id: int) -> OutcomeTable:
    return OutcomeTable.from_records(agreement.load_records(db, project_id))


def test_loaded_table_is_the_table_of_the_records(db) -> None:
    project = seed_project(db, _records())
    _vary_judgments(db, project.id)
    expected = _from_records(db, project.id)
    assert expected.prompt_ids[:5] == ["10", "10-0", "10-1", "10-2", "9"]  # code points
    assert len(expected.blocks) == 4 and np.isnan(expected.seconds).any()
    assert_same_table(agreement.load_table(db, project.id), expected)


def test_judgment_of_a_prompt_in_another_project_is_read_like_the_records(db) -> None:
    """A judgment row naming another project's prompt (not made by the app, but the
    records' join reads it): the table still equals the records' table."""
    project = seed_project(db, _records(seed=5))
    other = seed_project(db, [prompt("zz", "ab", {"q": [["a"], ["b"]]})], name="other")
    db.execute(
        text("UPDATE judgments SET project_id = :p WHERE project_id = :o"),
        {"p": project.id, "o": other.id},
    )
    expected = _from_records(db, project.id)
    assert "zz" in expected.prompt_ids and "ext:q" in expected.labelers
    assert_same_table(agreement.load_table(db, project.id), expected)


def test_empty_project_loads_an_empty_table(db) -> None:
    project = seed_project(db, [prompt("p1", "ab", {})])
    table = agreement.load_table(db, project.id)
    assert table.prompt_ids == [] and table.labelers == [] and table.n_units == 0


def test_inconsistent_stored_ranking_is_a_clear_error(db) -> None:
    project = seed_project(
        db, [prompt("p1", "abc", {"x": [["a"], ["b", "c"]], "y": [["c"], ["a"], ["b"]]})]
    )
    db.execute(
        text(
            "UPDATE judgments j SET ranking = :r FROM users u "
            "WHERE u.id = j.labeler_id AND u.username = 'ext:y' AND j.project_id = :p"
        ),
        {"r": json.dumps([["a"], ["b"]]), "p": project.id},
    )
    with pytest.raises(ValidationFailed) as error:
        agreement.load_table(db, project.id)
    assert error.value.details == [
        {
            "line": None,
            "field": "judgments",
            "message": "prompt 'p1': rankings cover different completions",
        }
    ]

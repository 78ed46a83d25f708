"""table_from_columns builds the same OutcomeTable as OutcomeTable.from_records, and
refuses the same inconsistent rankings with the same message."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from app.domain.agreement import InvalidAgreementData
from app.domain.json_cache import JsonCache
from app.domain.outcome_columns import JudgmentColumns, table_from_columns
from app.domain.outcomes import JudgmentRecord, OutcomeTable
from tests.helpers.tables import assert_same_table


def _ranking(rng: random.Random, ids: list[str]) -> list[list[str]]:
    order = rng.sample(ids, len(ids))
    tiers: list[list[str]] = []
    for cid in order:
        if tiers and rng.random() < 0.3:
            tiers[-1].append(cid)
        else:
            tiers.append([cid])
    return tiers


def _rows(seed: int = 5, prompts: int = 300) -> list[tuple[Any, ...]]:
    """(prompt_id, labeler, ranking, reject_all, shown, ms, gold) texts, grouped by prompt."""
    rng = random.Random(seed)
    rows = []
    for n in sorted(range(prompts), key=str):
        ids = [chr(97 + c) for c in range(rng.randint(1, 5))]
        gold = json.dumps(_ranking(rng, ids)) if rng.random() < 0.15 else None
        for labeler in rng.sample(range(12), rng.randint(1, 4)):
            reject = rng.random() < 0.1
            ranking = None if reject and rng.random() < 0.5 else json.dumps(_ranking(rng, ids))
            shown = rng.choice([None, "[]", '"x"', json.dumps(rng.sample(ids, len(ids)))])
            ms = rng.choice([None, rng.randint(0, 90_000)])
            rows.append((str(n), f"l{labeler:02d}", ranking, reject, shown, ms, gold))
    return rows


def _records(rows: list[tuple[Any, ...]]) -> list[JudgmentRecord]:
    cache = JsonCache()
    return [
        JudgmentRecord(
            labeler, prompt, None if reject else cache.tiers(r), cache.order(s), ms, cache.tiers(g)
        )
        for prompt, labeler, r, reject, s, ms, g in rows
    ]


def _columns(rows: list[tuple[Any, ...]]) -> JudgmentColumns:
    return JudgmentColumns(*(list(c) for c in zip(*rows, strict=True)))


def test_columns_give_the_table_of_the_records() -> None:
    rows = _rows()
    expected = OutcomeTable.from_records(_records(rows))
    table = table_from_columns(_columns(rows))
    assert_same_table(table, expected)
    assert sorted(table.blocks) == [2, 3, 4, 5]


def test_empty_columns_give_an_empty_table() -> None:
    table = table_from_columns(JudgmentColumns((), (), (), (), (), (), ()))
    assert table.prompt_ids == [] and table.n_units == 0 and table.blocks == {}


@pytest.mark.parametrize(
    ("ranking", "gold"),
    [
        ([["a"], ["c"]], None),  # another completion than the prompt's first ranking
        ([["a"], ["a"]], None),  # one completion twice
        ([["a"], ["b"]], [["a"], ["c"]]),  # gold covering other completions
    ],
)
def test_inconsistent_rankings_are_refused_like_from_records(ranking, gold) -> None:
    rows = [
        ("p1", "x", '[["a"], ["b"]]', False, None, None, None),
        ("p2", "x", '[["a"], ["b"]]', False, None, None, json.dumps(gold) if gold else None),
        ("p2", "y", json.dumps(ranking), False, None, None, json.dumps(gold) if gold else None),
    ]
    with pytest.raises(InvalidAgreementData) as expected:
        OutcomeTable.from_records(_records(rows))
    with pytest.raises(InvalidAgreementData) as got:
        table_from_columns(_columns(rows))
    assert (
        str(got.value) == str(expected.value) == "prompt 'p2': rankings cover different completions"
    )


def test_columns_must_come_grouped_in_prompt_order() -> None:
    rows = [
        ("p2", "x", '[["a"], ["b"]]', False, None, None, None),
        ("p1", "x", '[["a"], ["b"]]', False, None, None, None),
    ]
    with pytest.raises(ValueError, match="grouped by prompt"):
        table_from_columns(_columns(rows))

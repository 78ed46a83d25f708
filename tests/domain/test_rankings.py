"""Rankings: validation messages, pairwise outcomes, pairs; ratings validation."""

from __future__ import annotations

import pytest

from app.domain.errors import ValidationFailed
from app.domain.rankings import (
    pairwise_outcomes,
    ranked_pairs,
    tied_pairs,
    validate_ranking,
    validate_ratings,
)

IDS = ["a", "b", "c"]


def _messages(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    assert {d["field"] for d in exc.value.details} == {"ranking"}
    assert all(d["line"] is None for d in exc.value.details)
    return [d["message"] for d in exc.value.details]


def test_valid_ranking_is_returned_as_tuples() -> None:
    assert validate_ranking([["b"], ["a", "c"]], IDS, allow_ties=True) == (("b",), ("a", "c"))


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ("abc", "must be a list of tiers (lists of completion ids), got str"),
        ([], "must not be empty: rank every completion"),
        ([["a"], "b", ["c"]], "tier 2 must be a list of completion ids"),
        ([["a"], [], ["b", "c"]], "tier 2 is empty"),
        ([["a", 3], ["b"], ["c"]], "tier 1, item 2: a completion id must be a string, got int"),
        ([["a"], ["b"], ["x"]], "unknown completion id 'x' in tier 3"),
        ([["a"], ["b"], ["c"], ["a"]], "completion 'a' appears more than once"),
        ([["a"], ["b"]], "missing completion id(s): 'c'"),
    ],
)
def test_each_problem_has_a_precise_message(tiers: object, expected: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_ranking(tiers, IDS, allow_ties=True)
    assert expected in _messages(exc)
    assert exc.value.code == "validation_failed"
    assert str(exc.value).startswith("ranking: ")


def test_ties_refused_when_the_project_does_not_allow_them() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_ranking([["a", "b"], ["c"]], IDS, allow_ties=False)
    assert _messages(exc) == ["tier 1 ties 2 completions; ties are not allowed"]
    assert validate_ranking([["a"], ["b"], ["c"]], IDS, allow_ties=False)


def test_every_problem_is_listed() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_ranking([["a", "x"], ["a"]], IDS, allow_ties=True)
    assert _messages(exc) == [
        "unknown completion id 'x' in tier 1",
        "completion 'a' appears more than once",
        "missing completion id(s): 'b', 'c'",
    ]
    assert "(and 2 more problem(s))" in exc.value.message


def test_pairwise_outcomes_use_string_order_keys() -> None:
    assert pairwise_outcomes([["b"], ["a", "c"]]) == {
        ("a", "b"): -1,
        ("a", "c"): 0,
        ("b", "c"): 1,
    }


def test_ranked_and_tied_pairs() -> None:
    tiers = [["b"], ["a", "c"], ["d"]]
    assert ranked_pairs(tiers) == [("b", "a"), ("b", "c"), ("b", "d"), ("a", "d"), ("c", "d")]
    assert tied_pairs(tiers) == [("a", "c")]
    assert ranked_pairs([["a", "b"]]) == []


def test_ratings_are_optional_and_partial() -> None:
    axes = ["helpful", "honest"]
    assert validate_ratings(None, IDS, axes) == {}
    assert validate_ratings({"b": {"helpful": 5}}, IDS, axes) == {"b": {"helpful": 5}}


def test_rating_problems_name_their_field() -> None:
    ratings = {
        "b": {"helpful": 6, "honest": True, "funny": 3},
        "z": {"helpful": 1},
        "c": "good",
    }
    with pytest.raises(ValidationFailed) as exc:
        validate_ratings(ratings, IDS, ["helpful", "honest"])
    fields = [(d["field"], d["message"]) for d in exc.value.details]
    assert fields == [
        ("ratings.b.helpful", "must be between 1 and 5, got 6"),
        ("ratings.b.honest", "must be an integer 1..5"),
        ("ratings.b.funny", "unknown rating axis; known axes: helpful, honest"),
        ("ratings.z", "unknown completion id"),
        ("ratings.c", "must be an object mapping rating axes to 1..5"),
    ]


def test_ratings_must_be_an_object() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_ratings([1, 2], IDS, ["helpful"])
    assert exc.value.details[0]["field"] == "ratings"

"""Export rows: strategies, filters, formats and canonical bytes (SPEC §4, §5)."""

from __future__ import annotations

import json

import pytest

from app.domain.consensus import BORDA
from app.domain.errors import ValidationFailed
from app.domain.export_filters import ExportFilters
from app.domain.jsonl import serialize_row, serialize_rows
from app.domain.pairs import (
    ROW_KEYS,
    STRATEGIES,
    JudgmentData,
    PromptData,
    manifest_method_description,
    pair_lines,
    pair_rows,
)

COMPLETIONS = {"a": "Open the windows at night.", "b": "Buy a fan.", "c": "Move."}


def _prompt(*judgments: JudgmentData, gold: list[list[str]] | None = None) -> PromptData:
    return PromptData("p-17", "My house is too hot.", COMPLETIONS, gold, list(judgments))


# a > b > c twice, b > a = c once, and one reject_all.
HOT = _prompt(
    JudgmentData("ann1", [["a"], ["b"], ["c"]]),
    JudgmentData("ann2", [["b"], ["a", "c"]]),
    JudgmentData("ann3", [["a"], ["b"], ["c"]]),
    JudgmentData("ann4", None, reject_all=True),
)


def _pairs(rows: list[dict]) -> list[tuple[str, str]]:
    return [(r["chosen_id"], r["rejected_id"]) for r in rows]


def test_consensus_rows_follow_the_spec_layout() -> None:
    rows = pair_rows(HOT)
    assert [tuple(r) for r in rows] == [ROW_KEYS] * 3
    assert rows[0] == {
        "prompt": "My house is too hot.",
        "chosen": "Open the windows at night.",
        "rejected": "Buy a fan.",
        "margin": 0.6667,  # the vote share, as in SPEC §5's example
        "prompt_id": "p-17",
        "chosen_id": "a",
        "rejected_id": "b",
        "votes_for": 2,
        "votes_against": 1,
        "votes_tie": 0,
        "n_judgments": 4,
        "agreement": 0.6667,
    }
    assert _pairs(rows) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [(r["votes_for"], r["votes_against"], r["votes_tie"]) for r in rows[1:]] == [
        (2, 0, 1),
        (3, 0, 0),
    ]
    assert [r["margin"] for r in rows[1:]] == [0.6667, 1.0]


def test_best_vs_rest_and_best_vs_worst_use_the_consensus_order() -> None:
    assert _pairs(pair_rows(HOT, "best_vs_rest")) == [("a", "b"), ("a", "c")]
    assert _pairs(pair_rows(HOT, "best_vs_worst")) == [("a", "c")]


def test_all_gives_each_labelers_own_pairs_with_everyones_votes() -> None:
    rows = pair_rows(HOT, "all")
    assert [(r["labeler"], r["chosen_id"], r["rejected_id"]) for r in rows] == [
        ("ann1", "a", "b"),
        ("ann1", "a", "c"),
        ("ann1", "b", "c"),
        ("ann2", "b", "a"),
        ("ann2", "b", "c"),
        ("ann3", "a", "b"),
        ("ann3", "a", "c"),
        ("ann3", "b", "c"),
    ]
    dissent = rows[3]
    assert (dissent["votes_for"], dissent["votes_against"], dissent["margin"]) == (1, 2, 0.3333)
    assert dissent["agreement"] == 0.3333
    assert list(dissent)[-1] == "labeler"


def test_head_to_head_contradicting_the_order_is_left_out() -> None:
    """Borda points b 7 > a 6, but a beats b 2-1: that pair is not a consensus pair."""
    prompt = PromptData(
        "p",
        "q",
        {"a": "A", "b": "B", "c": "C", "d": "D"},
        None,
        [
            JudgmentData("x", [["a"], ["b"], ["c"], ["d"]]),
            JudgmentData("y", [["b"], ["c"], ["d"], ["a"]]),
            JudgmentData("z", [["a"], ["b"], ["c"], ["d"]]),
        ],
    )
    pairs = _pairs(pair_rows(prompt))
    assert ("b", "a") not in pairs and ("a", "b") not in pairs
    assert pairs == [("b", "c"), ("b", "d"), ("a", "c"), ("a", "d"), ("c", "d")]
    assert pair_rows(prompt, method=BORDA) == pair_rows(prompt)


def test_ties_dropped_by_default_and_kept_on_request() -> None:
    prompt = _prompt(
        JudgmentData("x", [["a", "b"], ["c"]]),
        JudgmentData("y", [["b"], ["a"], ["c"]]),
        JudgmentData("z", [["a"], ["b"], ["c"]]),
    )
    assert _pairs(pair_rows(prompt)) == [("a", "c"), ("b", "c")]
    kept = pair_rows(prompt, filters=ExportFilters(ties="keep"))
    assert [(r["chosen_id"], r["rejected_id"], r["tie"]) for r in kept] == [
        ("a", "b", True),
        ("a", "c", False),
        ("b", "c", False),
    ]
    assert kept[0]["margin"] == 0.0
    assert (kept[0]["votes_for"], kept[0]["votes_against"], kept[0]["votes_tie"]) == (1, 1, 1)
    tied_all = [r for r in pair_rows(prompt, "all", ExportFilters(ties="keep")) if r["tie"]]
    assert [(r["labeler"], r["chosen_id"], r["rejected_id"]) for r in tied_all] == [("x", "a", "b")]


def test_min_judgments_counts_reject_all_after_exclusions() -> None:
    assert pair_rows(HOT, filters=ExportFilters(min_judgments=4))
    assert not pair_rows(HOT, filters=ExportFilters(min_judgments=5))
    excluded = ExportFilters(min_judgments=4, exclude_labelers=("ann4",))
    assert not pair_rows(HOT, filters=excluded)


def test_exclude_labelers_removes_their_votes() -> None:
    rows = pair_rows(HOT, filters=ExportFilters(exclude_labelers=("ann2",)))
    assert [(r["votes_for"], r["votes_against"], r["n_judgments"]) for r in rows] == [(2, 0, 3)] * 3


def test_min_agreement_filters_rows() -> None:
    rows = pair_rows(HOT, filters=ExportFilters(min_agreement=0.7))
    assert _pairs(rows) == [("b", "c")]
    assert pair_rows(HOT, filters=ExportFilters(min_agreement=2 / 3)) == pair_rows(HOT)


def test_min_agreement_compares_the_exact_share() -> None:
    """7 of 10 is exactly 0.7 although 0.7 * 10 > 7 in floating point."""
    judgments = [JudgmentData(f"l{i}", [["a"], ["b"]]) for i in range(7)]
    judgments += [JudgmentData(f"m{i}", [["b"], ["a"]]) for i in range(3)]
    prompt = PromptData("p", "q", {"a": "A", "b": "B"}, None, judgments)
    assert len(pair_rows(prompt, filters=ExportFilters(min_agreement=0.7))) == 1


def test_gold_prompts_are_left_out_unless_asked_for() -> None:
    gold = _prompt(JudgmentData("x", [["a"], ["b"], ["c"]]), gold=[["a"], ["b"], ["c"]])
    assert pair_rows(gold) == []
    assert len(pair_rows(gold, filters=ExportFilters(include_gold=True))) == 3


def test_prompts_without_rankings_give_no_rows() -> None:
    assert pair_rows(_prompt(JudgmentData("x", None, reject_all=True))) == []
    assert pair_rows(_prompt()) == []
    assert pair_lines(_prompt()) == b""


def test_conversational_prompts_use_trl_message_lists() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hot?"}]
    prompt = PromptData(
        "c1", messages, {"a": "Fan.", "b": "Ice."}, None, [JudgmentData("x", [["b"], ["a"]])]
    )
    (row,) = pair_rows(prompt)
    assert row["prompt"] == messages
    assert row["chosen"] == [{"role": "assistant", "content": "Ice."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Fan."}]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ties", ["drop", "keep"])
def test_pair_lines_are_the_serialized_rows(strategy: str, ties: str) -> None:
    filters = ExportFilters(ties=ties)
    assert pair_lines(HOT, strategy, filters) == serialize_rows(pair_rows(HOT, strategy, filters))


def test_serialized_rows_are_canonical_json_lines() -> None:
    row = {"prompt": "Ça chauffe", "margin": 2 / 3, "n": 3, "tie": False, "x": None}
    line = serialize_row(row)
    assert line == '{"prompt":"Ça chauffe","margin":0.6667,"n":3,"tie":false,"x":null}\n'.encode()
    assert json.loads(line) == {**row, "margin": 0.6667}
    with pytest.raises(ValueError, match="non-finite"):
        serialize_row({"margin": float("nan")})


def test_unknown_strategy_or_method_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as exc:
        pair_rows(HOT, "random")
    assert exc.value.details[0]["field"] == "strategy"
    with pytest.raises(ValidationFailed) as exc:
        pair_rows(HOT, method="elo")
    assert exc.value.details[0]["field"] == "method"


def test_filters_from_dict() -> None:
    filters = ExportFilters.from_dict(
        {
            "min_judgments": 2,
            "min_agreement": 1,
            "exclude_labelers": ["b", "a", "b"],
            "ties": "keep",
        }
    )
    assert filters == ExportFilters(2, 1.0, ("a", "b"), False, "keep")
    assert filters.to_dict() == {
        "min_judgments": 2,
        "min_agreement": 1.0,
        "exclude_labelers": ["a", "b"],
        "include_gold": False,
        "ties": "keep",
    }
    assert ExportFilters.from_dict(None) == ExportFilters()


def test_bad_filters_name_each_field() -> None:
    bad = {
        "min_judgments": True,
        "min_agreement": 1.5,
        "exclude_labelers": "ann1",
        "include_gold": "yes",
        "ties": "maybe",
        "colour": "red",
    }
    with pytest.raises(ValidationFailed) as exc:
        ExportFilters.from_dict(bad)
    assert [d["field"] for d in exc.value.details] == [f"filters.{key}" for key in bad]
    with pytest.raises(ValidationFailed) as exc:
        ExportFilters.from_dict(["ties"])
    assert exc.value.details[0]["field"] == "filters"


def test_manifest_description_names_method_and_definitions() -> None:
    described = manifest_method_description("consensus", BORDA)
    assert described["consensus"] == "borda"
    assert described["strategy"] == "consensus"
    assert "vote share" in described["margin"]
    assert "reject_all" in described["reject_all"]
    json.dumps(described)

"""Project, prompt and labeler figures over OutcomeTable (SPEC §6)."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest

from app.domain.agreement import InvalidAgreementData, cohen_kappa, krippendorff_alpha
from app.domain.figures import bootstrap_ci, project_figures, prompt_figures
from app.domain.labeler_figures import KAPPA_MIN_SHARED_PROMPTS, labeler_figures
from app.domain.outcomes import JudgmentRecord, OutcomeTable
from app.domain.rankings import pairwise_outcomes

ABC = [["a"], ["b"], ["c"]]
CBA = [["c"], ["b"], ["a"]]


def test_project_figures_by_hand() -> None:
    """Units (a,b), (a,c), (b,c) each get +1, +1, -1.

    Per unit 1 of 3 judgment pairs agree. Coincidences over the 3 units:
    o(+,+) = 3, o(+,-) = o(-,+) = 3, o(-,-) = 0; n+ = 6, n- = 3, n = 9, so nominal
    alpha = 1 - 6 / (2 * 6 * 3 / 8) = -1/3, and interval alpha = 1 - 24 / 18 = -1/3.
    Ranks 1,2,3 / 1,2,3 / 3,2,1 sum to 5, 6, 7: W = 12 * 2 / (9 * 24) = 1/9.
    """
    table = OutcomeTable.from_records(
        [
            JudgmentRecord("x", "p", ABC),
            JudgmentRecord("y", "p", ABC),
            JudgmentRecord("z", "p", CBA),
        ]
    )
    figures = project_figures(table)
    assert figures["alpha_nominal"] == pytest.approx(-1 / 3)
    assert figures["alpha_interval"] == pytest.approx(-1 / 3)
    assert figures["pairwise_agreement"] == pytest.approx(1 / 3)
    assert figures["mean_kendall_w"] == pytest.approx(1 / 9)
    assert (figures["n_prompts"], figures["n_judgments"], figures["n_units"]) == (1, 3, 3)
    assert all(type(value) in (float, int) for value in figures.values())
    assert prompt_figures([ABC, ABC, CBA], ["a", "b", "c"]) == {
        "pairwise_agreement": pytest.approx(1 / 3),
        "kendall_w": pytest.approx(1 / 9),
    }


def _random_records(seed: int, prompts: int, labelers: int = 6) -> list[JudgmentRecord]:
    rng = random.Random(seed)
    names = [f"l{i}" for i in range(labelers)]
    records = []
    for p in range(prompts):
        ids = list("abcde"[: rng.randint(2, 5)])
        truth = ids[:]
        rng.shuffle(truth)
        for name in rng.sample(names, rng.randint(1, 4)):
            order = truth[:]
            if rng.random() < 0.5:
                rng.shuffle(order)
            tiers = [[cid] for cid in order]
            if rng.random() < 0.3:
                tiers = [tiers[0] + tiers[1], *tiers[2:]]
            if rng.random() < 0.05:
                tiers = None
            records.append(JudgmentRecord(name, f"p{p:03d}", tiers))
    return records


def test_alphas_match_the_krippendorff_package() -> None:
    records = _random_records(seed=7, prompts=150)
    figures = project_figures(OutcomeTable.from_records(records))
    units: dict[tuple[str, tuple[str, str]], list[float]] = {}
    for record in records:
        if record.tiers is not None:
            for pair, value in pairwise_outcomes(record.tiers).items():
                units.setdefault((record.prompt_id, pair), []).append(value)
    width = max(len(values) for values in units.values())
    matrix = np.full((width, len(units)), np.nan)
    for column, values in enumerate(units.values()):
        matrix[: len(values), column] = values
    for level in ("nominal", "interval"):
        expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert figures[f"alpha_{level}"] == pytest.approx(expected, abs=1e-10)
        assert krippendorff_alpha(list(units.values()), level) == pytest.approx(expected)


def test_figures_do_not_depend_on_record_order() -> None:
    records = _random_records(seed=3, prompts=80)
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    first, second = OutcomeTable.from_records(records), OutcomeTable.from_records(shuffled)
    assert project_figures(first) == pytest.approx(project_figures(second))
    assert labeler_figures(first) == labeler_figures(second)
    assert bootstrap_ci(first, 50, seed=1) == bootstrap_ci(second, 50, seed=1)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    table = OutcomeTable.from_records(_random_records(seed=5, prompts=400))
    figures = project_figures(table)
    intervals = bootstrap_ci(table, n_resamples=300, seed=11)
    assert intervals == bootstrap_ci(table, n_resamples=300, seed=11)
    assert intervals != bootstrap_ci(table, n_resamples=300, seed=12)
    for name, (low, high) in intervals.items():
        assert low < figures[name] < high, name
        assert high - low < 0.2


def test_undefined_figures_are_none() -> None:
    table = OutcomeTable.from_records(
        [JudgmentRecord("x", "p", [["a"], ["b"]]), JudgmentRecord("y", "p", [["a"], ["b"]])]
    )
    figures = project_figures(table)
    assert figures["alpha_nominal"] is None and figures["alpha_interval"] is None
    assert figures["pairwise_agreement"] == 1.0
    assert figures["mean_kendall_w"] is None  # only 2 completions
    assert bootstrap_ci(table, 20)["alpha_nominal"] is None
    empty = project_figures(OutcomeTable.from_records([]))
    assert empty["pairwise_agreement"] is None and empty["n_prompts"] == 0


def test_prompt_figures_need_two_rankings() -> None:
    assert prompt_figures([ABC], ["a", "b", "c"]) == {"pairwise_agreement": None, "kendall_w": None}
    two = prompt_figures([[["a"], ["b"]], [["b"], ["a"]]], ["a", "b"])
    assert two == {"pairwise_agreement": 0.0, "kendall_w": None}
    all_tied = [[["a", "b", "c"]], [["a", "b", "c"]]]
    assert prompt_figures(all_tied, ["a", "b", "c"]) == {
        "pairwise_agreement": 1.0,
        "kendall_w": None,
    }


def test_rankings_of_one_prompt_must_cover_the_same_completions() -> None:
    records = [JudgmentRecord("x", "p", ABC), JudgmentRecord("y", "p", [["a"], ["b"]])]
    with pytest.raises(InvalidAgreementData, match="'p'"):
        OutcomeTable.from_records(records)


def _labeler_records() -> list[JudgmentRecord]:
    gold = ABC
    return [
        JudgmentRecord("l1", "p1", ABC, ["a", "b", "c"], 10_000, gold),
        JudgmentRecord("l2", "p1", ABC, ["c", "a", "b"], 20_000, gold),
        JudgmentRecord("l3", "p1", CBA, None, None, gold),
        JudgmentRecord("l4", "p1", [["a"], ["c"], ["b"]], ["a", "b", "c"], None, gold),
        JudgmentRecord("l1", "p2", [["a"], ["b"]], ["b", "a"], 30_000),
        JudgmentRecord("l2", "p2", [["a", "b"]], None, 40_000),
        JudgmentRecord("l3", "p2", None, ["a", "b"], 5_000),
    ]


def test_labeler_figures_by_hand() -> None:
    """p1 Borda points: l1 a2 b1 c0, l2 the same, l3 a0 b1 c2, l4 a2 b0 c1.

    Leave-one-out consensus for l1 (others a4 b2 c3): a>b, a>c, c>b, so l1 agrees on
    2 of 3; l2 likewise; l3 (others a6 b2 c1) agrees on 0 of 3; l4 (others a4 b3 c2)
    on 2 of 3. On p2 the only other ranking of l1 is l2's tie and vice versa: both
    disagree: 2 of 4 for both. Gold (a>b>c) only on p1.
    """
    rows = {
        row["labeler"]: row
        for row in labeler_figures(OutcomeTable.from_records(_labeler_records()))
    }
    assert list(rows) == ["l1", "l2", "l3", "l4"]
    assert rows["l1"] == {
        "labeler": "l1",
        "judgments": 2,
        "agreement": 0.5,
        "kappa": {},
        "gold_accuracy": 1.0,
        "position_bias": 0.5,
        "median_seconds": 20.0,
    }
    assert rows["l2"]["agreement"] == 0.5
    assert (rows["l2"]["position_bias"], rows["l2"]["median_seconds"]) == (0.0, 30.0)
    assert rows["l3"]["judgments"] == 2
    assert (rows["l3"]["agreement"], rows["l3"]["gold_accuracy"]) == (0.0, 0.0)
    assert (rows["l3"]["position_bias"], rows["l3"]["median_seconds"]) == (None, 5.0)
    assert rows["l4"]["agreement"] == pytest.approx(2 / 3)
    assert rows["l4"]["gold_accuracy"] == pytest.approx(2 / 3)
    assert (rows["l4"]["position_bias"], rows["l4"]["median_seconds"]) == (1.0, None)


@pytest.mark.parametrize("shared", [KAPPA_MIN_SHARED_PROMPTS - 1, KAPPA_MIN_SHARED_PROMPTS])
def test_kappa_needs_enough_shared_prompts(shared: int) -> None:
    rng = random.Random(shared)
    records, x_values, y_values = [], [], []
    for p in range(shared):
        rankings = []
        for name in ("x", "y"):
            order = ["a", "b", "c"]
            rng.shuffle(order)
            tiers = (
                [[order[0], order[1]], [order[2]]] if rng.random() < 0.3 else [[c] for c in order]
            )
            records.append(JudgmentRecord(name, f"p{p}", tiers))
            rankings.append(pairwise_outcomes(tiers))
        x_values += list(rankings[0].values())
        y_values += list(rankings[1].values())
    records.append(JudgmentRecord("z", "p0", ABC))
    rows = {row["labeler"]: row for row in labeler_figures(OutcomeTable.from_records(records))}
    if shared < KAPPA_MIN_SHARED_PROMPTS:
        assert rows["x"]["kappa"] == {} and rows["y"]["kappa"] == {}
    else:
        expected = cohen_kappa(x_values, y_values)
        assert rows["x"]["kappa"] == {"y": pytest.approx(expected)}
        assert rows["y"]["kappa"] == {"x": pytest.approx(expected)}
    assert rows["z"]["kappa"] == {}


def test_labeler_figures_of_an_empty_project_is_an_empty_list() -> None:
    assert labeler_figures(OutcomeTable.from_records([])) == []

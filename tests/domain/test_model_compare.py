"""Policy against base from labeled rankings (app/domain/model_compare.py)."""

from __future__ import annotations

import math

import pytest

from app.domain.model_compare import RankedPrompt, compare, outcome_counts

MODELS = ["policy", "base"]


def prompt(rankings, models=None) -> RankedPrompt:
    return RankedPrompt(
        models or {"p1": "policy", "p2": "policy", "b1": "base", "b2": "base"}, rankings
    )


def test_counts_wins_and_ties_between_models_only():
    counts = outcome_counts([prompt([[["p1"], ["b1", "p2"], ["b2"]]])], MODELS)
    wins, ties = counts[0, 0], counts[0, 1]
    # p1 beats b1, b2; p2 beats b2; b1 ties p2; b1 vs b2 and p1 vs p2 are the same model
    assert wins.tolist() == [[0, 3], [0, 0]]
    assert ties.tolist() == [[0, 1], [1, 0]]


def test_a_clearly_better_policy_wins_with_an_interval_above_half():
    prompts = [prompt([[["p1"], ["p2"], ["b1"], ["b2"]]]) for _ in range(15)]
    prompts += [prompt([[["b1"], ["p1"], ["p2"], ["b2"]]]) for _ in range(5)]
    result = compare(
        outcome_counts(prompts, MODELS), MODELS, focus=("policy", "base"), resamples=300
    )
    h2h = result["head_to_head"]
    assert (h2h["wins"], h2h["losses"], h2h["ties"]) == (15 * 4 + 5 * 2, 5 * 2, 0)
    assert h2h["win_rate"] == pytest.approx(70 / 80)
    low, high = h2h["win_rate_ci"]
    assert 0.5 < low < h2h["win_rate"] < high <= 1.0
    assert h2h["bt_margin"] > 0 and h2h["bt_margin_ci"][0] > 0
    scores = result["bradley_terry"]
    assert scores["policy"]["score"] == pytest.approx(-scores["base"]["score"])
    assert result["n_prompts"] == 20 and result["comparisons"] == 80


def test_even_models_have_an_interval_around_half_and_are_reproducible():
    prompts = [
        prompt([[["p1"], ["b1"], ["p2"], ["b2"]]]),
        prompt([[["b1"], ["p1"], ["b2"], ["p2"]]]),
    ] * 10
    first = compare(outcome_counts(prompts, MODELS), MODELS, focus=("policy", "base"), seed=3)
    again = compare(outcome_counts(prompts, MODELS), MODELS, focus=("policy", "base"), seed=3)
    assert first == again
    low, high = first["head_to_head"]["win_rate_ci"]
    assert low < 0.5 < high
    assert first["head_to_head"]["bt_margin"] == pytest.approx(0, abs=1e-9)


def test_no_labels_yet_gives_no_numbers():
    result = compare(outcome_counts([], MODELS), MODELS, focus=("policy", "base"))
    assert result["head_to_head"]["win_rate"] is None
    assert result["head_to_head"]["win_rate_ci"] is None
    assert all(math.isfinite(v["score"]) for v in result["bradley_terry"].values())

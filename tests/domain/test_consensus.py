"""Consensus: vote counts, order, Bradley–Terry and Borda scores."""

from __future__ import annotations

import math

import pytest

from app.domain.consensus import (
    BORDA,
    BRADLEY_TERRY,
    PairVotes,
    bradley_terry_strengths,
    consensus,
)

IDS = ["a", "b", "c", "d"]
# Borda points a 6, b 7, c 4, d 1, yet a beats b head to head 2-1.
CONTESTED = [
    [["a"], ["b"], ["c"], ["d"]],
    [["b"], ["c"], ["d"], ["a"]],
    [["a"], ["b"], ["c"], ["d"]],
]


def test_votes_points_and_order() -> None:
    cons = consensus(CONTESTED, IDS)
    assert cons.completion_ids == ("a", "b", "c", "d")
    assert cons.points == {"a": 6.0, "b": 7.0, "c": 4.0, "d": 1.0}
    assert cons.order == ("b", "a", "c", "d")
    assert cons.pair("a", "b") == (2, 1, 0)
    assert cons.pair("b", "a") == (1, 2, 0)
    assert cons.votes[("a", "b")] == PairVotes("a", "b", 2, 1, 0)
    assert len(cons.votes) == 6


def test_ties_count_half_and_equal_points_break_by_id() -> None:
    cons = consensus([[["b"], ["a"]], [["a"], ["b"]], [["a", "b"]]], ["b", "a"])
    assert cons.points == {"a": 1.5, "b": 1.5}
    assert cons.order == ("a", "b")
    assert cons.pair("a", "b") == (1, 1, 1)


def test_bradley_terry_order_matches_points() -> None:
    cons = consensus(CONTESTED, IDS, BRADLEY_TERRY)
    by_score = sorted(cons.scores, key=lambda cid: -cons.scores[cid])
    assert tuple(by_score) == cons.order


def test_bradley_terry_solves_its_likelihood_equations() -> None:
    """At the MLE: wins_i + 1/2 (prior) = sum_j n_ij p_i/(p_i+p_j) + p_i/(p_i+1)."""
    wins = [[0, 2, 3, 2.5], [1, 0, 3, 3], [0, 0, 0, 2], [0.5, 0, 1, 0]]
    p = bradley_terry_strengths(wins)
    for i in range(4):
        expected = sum((wins[i][j] + wins[j][i]) * p[i] / (p[i] + p[j]) for j in range(4) if j != i)
        expected += p[i] / (p[i] + 1)
        assert sum(wins[i]) + 0.5 == pytest.approx(expected, rel=1e-8)


def test_prior_keeps_a_clean_sweep_finite() -> None:
    cons = consensus([[["a"], ["b"], ["c"]]] * 5, ["a", "b", "c"])
    scores = cons.scores
    assert all(math.isfinite(s) for s in scores.values())
    assert scores["a"] > 0 > scores["c"]
    assert scores["a"] == pytest.approx(-scores["c"])
    assert scores["b"] == pytest.approx(0.0, abs=1e-9)


def test_borda_scores_are_mean_points() -> None:
    cons = consensus(CONTESTED, IDS, BORDA)
    assert cons.scores == pytest.approx({"a": 2.0, "b": 7 / 3, "c": 4 / 3, "d": 1 / 3})
    assert cons.order == consensus(CONTESTED, IDS, BRADLEY_TERRY).order


def test_no_rankings_gives_an_order_by_id() -> None:
    cons = consensus([], ["b", "a"])
    assert cons.order == ("a", "b")
    assert cons.n_rankings == 0


@pytest.mark.parametrize(
    "ranking",
    [[["a"], ["b"]], [["a"], ["b"], ["x"]], [["a"], ["b"], ["c"], ["a"]]],
)
def test_rankings_must_cover_the_completions(ranking: list[list[str]]) -> None:
    with pytest.raises(ValueError, match="completion"):
        consensus([ranking], ["a", "b", "c"])


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown consensus method"):
        consensus([], ["a"], "elo")

"""SPEC §6 coefficients against published worked examples, and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import friedmanchisquare

from app.domain.agreement import (
    AgreementUndefined,
    InvalidAgreementData,
    cohen_kappa,
    fleiss_kappa,
    kendall_w,
    krippendorff_alpha,
)

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers x 12 units with missing values.
OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
UNITS = [list(unit) for unit in zip(*OBSERVERS, strict=True)]

# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (1..5), as
# distributed with R's irr package (`diagnoses`); kappam.fleiss gives 0.4302445.
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip

# Siegel (1956), Nonparametric Statistics, Kendall's W example with ties, as used by
# the NAG Library's G08DAF example program: 3 rankings of 10 objects.
SIEGEL_RANKS = [
    [1.0, 4.5, 2.0, 4.5, 3.0, 7.5, 6.0, 9.0, 7.5, 10.0],
    [2.5, 1.0, 2.5, 4.5, 4.5, 8.0, 9.0, 6.5, 10.0, 6.5],
    [2.0, 1.0, 4.5, 4.5, 4.5, 4.5, 8.0, 8.0, 8.0, 10.0],
]


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_2011_example(level: str, published: float) -> None:
    assert round(krippendorff_alpha(UNITS, level), 3) == published


def test_krippendorff_ignores_units_with_one_value() -> None:
    assert krippendorff_alpha([*UNITS, [7, N, N, N]], "interval") == pytest.approx(
        krippendorff_alpha(UNITS, "interval")
    )


def test_krippendorff_edge_cases() -> None:
    with pytest.raises(AgreementUndefined, match="pairable"):
        krippendorff_alpha([[1], [2], [3, N]], "nominal")  # a single coder
    with pytest.raises(AgreementUndefined, match="equal"):
        krippendorff_alpha([[1, 1], [1, 1, N]], "interval")  # no variation
    assert krippendorff_alpha([[1, 1], [2, 2]], "nominal") == 1.0
    with pytest.raises(InvalidAgreementData, match="level"):
        krippendorff_alpha(UNITS, "cardinal")
    with pytest.raises(InvalidAgreementData, match="numeric"):
        krippendorff_alpha([["x", "y"]], "ordinal")
    with pytest.raises(InvalidAgreementData, match="list of units"):
        krippendorff_alpha("ab", "nominal")
    assert isinstance(AgreementUndefined("x"), ValueError)


def test_krippendorff_nominal_accepts_labels() -> None:
    labels = [["x", "x"], ["y", "y"], ["x", "y"]]
    numbers = [[0, 0], [1, 1], [0, 1]]
    assert krippendorff_alpha(labels, "nominal") == krippendorff_alpha(numbers, "nominal")


def _category_counts(ratings: list[list[int]], categories: int) -> list[list[int]]:
    return [[row.count(c) for c in range(1, categories + 1)] for row in ratings]


def test_fleiss_1971_diagnoses() -> None:
    assert fleiss_kappa(_category_counts(DIAGNOSES, 5)) == pytest.approx(0.4302445, abs=1e-7)


def test_fleiss_wikipedia_example() -> None:
    assert round(fleiss_kappa(WIKIPEDIA_FLEISS), 3) == 0.210


def test_fleiss_edge_cases() -> None:
    with pytest.raises(InvalidAgreementData, match="same number of raters"):
        fleiss_kappa([[2, 0], [1, 0]])
    with pytest.raises(AgreementUndefined, match="two raters"):
        fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(AgreementUndefined, match="same"):
        fleiss_kappa([[3, 0], [3, 0]])
    with pytest.raises(InvalidAgreementData):
        fleiss_kappa([[1.5, 0.5]])


def _labels(table: list[list[int]]) -> tuple[list[str], list[str]]:
    """Two raters' labels from a 2x2 table [[yes/yes, yes/no], [no/yes, no/no]]."""
    a: list[str] = []
    b: list[str] = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += ["yes" if i == 0 else "no"] * count
            b += ["yes" if j == 0 else "no"] * count
    return a, b


@pytest.mark.parametrize(
    ("table", "kappa"),
    [
        ([[20, 5], [10, 15]], 0.4),  # Wikipedia "Cohen's kappa": 50 grant proposals
        ([[45, 15], [25, 15]], 0.1304),  # Wikipedia: same agreement, different kappa
        ([[25, 35], [5, 35]], 0.2593),
    ],
)
def test_cohen_textbook_tables(table: list[list[int]], kappa: float) -> None:
    assert round(cohen_kappa(*_labels(table)), 4) == kappa


def test_cohen_edge_cases() -> None:
    assert cohen_kappa([1, 2, None, 3], [1, 2, 3, None]) == 1.0
    with pytest.raises(InvalidAgreementData, match="same number"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(AgreementUndefined, match="one label"):
        cohen_kappa([1, 1, 1], [1, 1, 1])
    with pytest.raises(AgreementUndefined, match="rated by both"):
        cohen_kappa([None], [1])


def test_kendall_w_siegel_example() -> None:
    assert round(kendall_w(SIEGEL_RANKS), 3) == 0.828
    assert round(kendall_w(SIEGEL_RANKS, ties=False), 3) == 0.796


def test_kendall_w_matches_friedman() -> None:
    """W = chi2_F / (m (n - 1)), with scipy's tie-corrected Friedman statistic."""
    chi2 = friedmanchisquare(*np.asarray(SIEGEL_RANKS).T).statistic
    assert kendall_w(SIEGEL_RANKS) == pytest.approx(chi2 / (3 * 9))


def test_kendall_w_edge_cases() -> None:
    assert kendall_w([[1, 2, 3], [1, 2, 3]]) == pytest.approx(1.0)
    assert kendall_w([[1, 2], [2, 1]]) == pytest.approx(0.0)
    with pytest.raises(AgreementUndefined, match="two raters"):
        kendall_w([[1, 2, 3]])
    with pytest.raises(AgreementUndefined, match="ties all"):
        kendall_w([[2, 2, 2], [2, 2, 2]])
    with pytest.raises(InvalidAgreementData, match="ranks"):
        kendall_w([[1, 2, 2], [1, 2, 3]])

"""Agreement coefficients of SPEC §6, on plain Python data.

Every function returns a float or raises :class:`AgreementError` (a ``ValueError``):

* :class:`InvalidAgreementData` for malformed input (ragged tables, unknown level,
  non-numeric values where distances are needed, ranks that are not ranks);
* :class:`AgreementUndefined` when the coefficient does not exist for the data:
  fewer than two pairable values or coders, or no variation at all (every value
  the same, so expected disagreement is 0 and the ratio is 0/0).

Missing values (``None``) are allowed in :func:`krippendorff_alpha` (units with
fewer than two values are ignored, as Krippendorff prescribes) and in
:func:`cohen_kappa` (positions where either rater is missing are ignored).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")


class AgreementError(ValueError):
    """An agreement coefficient could not be computed."""


class InvalidAgreementData(AgreementError):
    """The input is malformed."""


class AgreementUndefined(AgreementError):
    """The coefficient is undefined for this data (too few values, or no variation)."""


def _sorted_values(values: set[Hashable], level: str) -> list[Hashable]:
    """The distinct values in a stable order: numeric order where distances need it."""
    if level == "nominal":
        return sorted(values, key=lambda v: (type(v).__name__, repr(v)))
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise InvalidAgreementData(f"level {level!r} needs numeric values, got {bad[0]!r}")
    if level == "ratio" and any(v < 0 for v in values):
        raise InvalidAgreementData("level 'ratio' needs non-negative values")
    return sorted(values)


def _value_counts(data: Sequence[Sequence[Any]], level: str) -> tuple[np.ndarray, list[Hashable]]:
    """Units x values matrix of how many coders gave each value to each unit."""
    if isinstance(data, str | bytes) or not all(
        isinstance(unit, Sequence) and not isinstance(unit, str | bytes) for unit in data
    ):
        raise InvalidAgreementData("data must be a list of units, each a list of coder values")
    present = {v for unit in data for v in unit if v is not None}
    values = _sorted_values(present, level)
    column = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(data), len(values)))
    for u, unit in enumerate(data):
        for v in unit:
            if v is not None:
                counts[u, column[v]] += 1
    return counts, values


def _ordinal_delta(marginals: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal metric from the value marginals n_c."""
    cumulative = np.concatenate(([0.0], np.cumsum(marginals)))
    c = np.arange(len(marginals))
    lo, hi = np.minimum.outer(c, c), np.maximum.outer(c, c)
    between = cumulative[hi + 1] - cumulative[lo]
    return (between - (marginals[lo] + marginals[hi]) / 2) ** 2


def delta_matrix(values: Sequence[float], level: str, marginals: np.ndarray) -> np.ndarray:
    """Squared distance delta(c, k) between every two values for a measurement level."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "ordinal":
        return _ordinal_delta(marginals)
    x = np.asarray(values, dtype=float)
    diff = np.subtract.outer(x, x)
    if level == "interval":
        return diff**2
    total = np.add.outer(x, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total == 0, 0.0, (diff / np.where(total == 0, 1.0, total)) ** 2)


def alpha_from_coincidences(coincidences: np.ndarray, delta: np.ndarray) -> float:
    """Krippendorff's alpha = 1 - D_o / D_e from a coincidence matrix and a metric."""
    marginals = coincidences.sum(axis=1)
    n = marginals.sum()
    if n < 2:
        raise AgreementUndefined("alpha needs at least two pairable values")
    observed = float((coincidences * delta).sum())
    expected = float((np.outer(marginals, marginals) * delta).sum()) / (n - 1)
    if expected == 0:
        raise AgreementUndefined("alpha is undefined when all pairable values are equal")
    return float(1.0 - observed / expected)


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidences from a units x values count matrix.

    Units coded by fewer than two coders are not pairable and contribute nothing.
    """
    m = counts.sum(axis=1)
    pairable = m >= 2
    c = counts[pairable]
    weights = 1.0 / (m[pairable] - 1)
    weighted = c * weights[:, None]
    return c.T @ weighted - np.diag(weighted.sum(axis=0))


def krippendorff_alpha(data: Sequence[Sequence[Any]], level: str) -> float:
    """Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    ``data[u]`` lists the values the coders gave unit u, ``None`` where a coder gave
    none; the position of a value does not matter. ``level`` is ``"nominal"``,
    ``"ordinal"``, ``"interval"`` or ``"ratio"``.
    """
    if level not in LEVELS:
        raise InvalidAgreementData(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    counts, values = _value_counts(data, level)
    coincidences = coincidence_matrix(counts)
    delta = delta_matrix(values, level, coincidences.sum(axis=1))
    return alpha_from_coincidences(coincidences, delta)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa (Fleiss 1971): ``counts[i][c]`` raters put subject i in category c.

    Every subject must have the same number of raters, at least two.
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise InvalidAgreementData("counts must be a non-empty subjects x categories table")
    if (table < 0).any() or (table != np.round(table)).any():
        raise InvalidAgreementData("counts must be non-negative integers")
    raters = table.sum(axis=1)
    if (raters != raters[0]).any():
        raise InvalidAgreementData("every subject must be rated by the same number of raters")
    n = raters[0]
    if n < 2:
        raise AgreementUndefined("Fleiss' kappa needs at least two raters per subject")
    per_subject = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    shares = table.sum(axis=0) / table.sum()
    expected = float((shares**2).sum())
    if expected == 1.0:
        raise AgreementUndefined("Fleiss' kappa is undefined when every rating is the same")
    return (float(per_subject.mean()) - expected) / (1.0 - expected)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's (1960) kappa for two raters; positions where either is ``None`` are skipped."""
    if len(a) != len(b):
        raise InvalidAgreementData(
            f"both raters need the same number of labels ({len(a)} != {len(b)})"
        )
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        raise AgreementUndefined("Cohen's kappa needs at least one item rated by both")
    labels = sorted({v for pair in pairs for v in pair}, key=lambda v: (type(v).__name__, repr(v)))
    column = {v: i for i, v in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in pairs:
        table[column[x], column[y]] += 1
    return kappa_from_table(table)


def kappa_from_table(table: np.ndarray) -> float:
    """Cohen's kappa from a square confusion table (rows: rater A, columns: rater B)."""
    total = table.sum()
    if total == 0:
        raise AgreementUndefined("Cohen's kappa needs at least one item rated by both")
    observed = np.trace(table) / total
    expected = float(table.sum(axis=1) @ table.sum(axis=0)) / total**2
    if expected == 1.0:
        raise AgreementUndefined("Cohen's kappa is undefined when both raters use one label only")
    return float((observed - expected) / (1.0 - expected))


def _tie_sum(row: np.ndarray) -> float:
    """Sum of t^3 - t over the groups of tied ranks in one rater's ranking (counted in
    Python: a row is a handful of ranks, where ``np.unique`` costs ~50x more, and this
    runs inside every judgment's transaction)."""
    return float(sum(t**3 - t for t in Counter(row.tolist()).values()))


def kendall_w(ranks: Sequence[Sequence[float]], ties: bool = True) -> float:
    """Kendall's coefficient of concordance W.

    ``ranks[r][o]`` is the rank rater r gave object o, 1..n, tied objects sharing the
    average rank. With ``ties=True`` the denominator is corrected for ties:
    ``W = 12 S / (m^2 (n^3 - n) - m * sum(t^3 - t))`` (Kendall & Babington Smith 1939).
    """
    table = np.asarray(ranks, dtype=float)
    if table.ndim != 2:
        raise InvalidAgreementData("ranks must be a raters x objects table")
    m, n = table.shape
    if m < 2 or n < 2:
        raise AgreementUndefined("Kendall's W needs at least two raters and two objects")
    if (
        not np.allclose(table.sum(axis=1), n * (n + 1) / 2)
        or (table < 1).any()
        or (table > n).any()
    ):
        raise InvalidAgreementData("each rater's ranks must be 1..n, ties as average ranks")
    totals = table.sum(axis=0)
    spread = float(((totals - totals.mean()) ** 2).sum())
    correction = sum(_tie_sum(row) for row in table) if ties else 0.0
    denominator = m**2 * (n**3 - n) - m * correction
    if denominator <= 0:
        raise AgreementUndefined("Kendall's W is undefined when every rater ties all objects")
    return 12.0 * spread / denominator

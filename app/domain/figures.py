"""Project and prompt agreement figures (SPEC §6), vectorized over an OutcomeTable.

* ``alpha_nominal`` / ``alpha_interval``: Krippendorff's alpha over units
  (prompt, completion pair) with values in {-1, 0, +1}.
* ``pairwise_agreement``: over all units, the share of pairs of judgments that gave
  the same value (pooled: agreeing pairs / all pairs).
* ``mean_kendall_w``: Kendall's W with tie correction per prompt, averaged over
  prompts with at least 2 ranking judgments of at least 3 completions (prompts
  where every judgment ties everything have no W and are left out).

A figure that is undefined for the data (e.g. alpha with no variation) is ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from app.domain.agreement import AgreementUndefined, delta_matrix, kendall_w
from app.domain.outcomes import OutcomeTable
from app.domain.rankings import pairwise_outcomes

OUTCOME_VALUES = np.array([-1.0, 0.0, 1.0])
FIGURES = ("alpha_nominal", "alpha_interval", "pairwise_agreement", "mean_kendall_w")
# Columns of the per-prompt statistics; every figure is a function of their sums.
STAT_COLUMNS = (
    "n_minus",  # pairable values -1, 0, +1 (the coincidence marginals)
    "n_tie",
    "n_plus",
    "observed_nominal",  # sum over units of the unit's observed disagreement
    "observed_interval",
    "agreeing_pairs",  # judgment pairs giving a unit the same value
    "judgment_pairs",
    "w_sum",  # Kendall's W where defined, and whether it is
    "w_count",
)


def _unit_stats(counts: np.ndarray) -> np.ndarray:
    """units x 7: marginals, observed disagreements, agreeing and all judgment pairs.

    For a unit with m >= 2 values, n_c of value v_c, Krippendorff's observed
    disagreement is sum_{c,k} n_c n_k delta(c, k) / (m - 1): for the nominal metric
    (m^2 - sum n_c^2) / (m - 1), for the interval metric
    2 (m sum n_c v_c^2 - (sum n_c v_c)^2) / (m - 1). Units with m < 2 count nothing.
    """
    minus, tie, plus = counts[:, 0], counts[:, 1], counts[:, 2]
    m = minus + tie + plus  # small integers: exact in any order
    pairable = m >= 2
    inverse = np.where(pairable, 1.0 / np.maximum(m - 1, 1), 0.0)
    squares = minus * minus + tie * tie + plus * plus
    first = plus - minus  # sum n_c v_c
    second = plus + minus  # sum n_c v_c^2
    stats = np.empty((len(counts), 7))
    stats[:, :3] = counts * pairable[:, None]
    stats[:, 3] = (m**2 - squares) * inverse
    stats[:, 4] = 2 * (m * second - first**2) * inverse
    stats[:, 5] = (squares - m) / 2
    stats[:, 6] = m * (m - 1) / 2
    return stats


def _per_prompt_w(table: OutcomeTable) -> np.ndarray:
    """Kendall's W (tie-corrected) per prompt; NaN when undefined or not eligible."""
    n_prompts = len(table.prompt_ids)
    result = np.full(n_prompts, np.nan)
    for k, block in table.blocks.items():
        if k < 3:
            continue
        m = np.bincount(block.prompt, minlength=n_prompts).astype(float)
        keys = (block.prompt[:, None] * k + np.arange(k)).ravel()
        totals = np.bincount(keys, block.ranks.ravel(), minlength=n_prompts * k)
        totals = totals.reshape(n_prompts, k)
        spread = ((totals - totals.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        ties = np.bincount(block.prompt, block.tie_sums, minlength=n_prompts)
        denominator = m**2 * (k**3 - k) - m * ties
        ok = (m >= 2) & (denominator > 0)
        result[ok] = 12.0 * spread[ok] / denominator[ok]
    return result


def prompt_stats(table: OutcomeTable) -> np.ndarray:
    """prompts x len(STAT_COLUMNS): the additive statistics behind every figure."""
    n_prompts = len(table.prompt_ids)
    units = _unit_stats(table.unit_counts)
    columns = [
        np.bincount(table.unit_prompt, units[:, c], minlength=n_prompts)
        for c in range(units.shape[1])
    ]
    w = _per_prompt_w(table)
    has_w = ~np.isnan(w)
    columns += [np.where(has_w, w, 0.0), has_w.astype(float)]
    return np.column_stack(columns) if n_prompts else np.zeros((0, len(STAT_COLUMNS)))


def _alpha(marginals: np.ndarray, observed: float, level: str) -> float | None:
    """Krippendorff's alpha from the value marginals and the summed observed disagreement."""
    n = marginals.sum()
    delta = delta_matrix(OUTCOME_VALUES, level, marginals)
    expected = float(marginals @ delta @ marginals)
    if n < 2 or expected == 0:
        return None
    return float(1.0 - observed * (n - 1) / expected)


def figures_from_sums(sums: np.ndarray) -> dict[str, float | None]:
    """The four figures from column sums of :func:`prompt_stats`."""
    stat = dict(zip(STAT_COLUMNS, sums, strict=True))
    marginals = sums[:3]
    pairs, w_count = stat["judgment_pairs"], stat["w_count"]
    return {
        "alpha_nominal": _alpha(marginals, stat["observed_nominal"], "nominal"),
        "alpha_interval": _alpha(marginals, stat["observed_interval"], "interval"),
        "pairwise_agreement": float(stat["agreeing_pairs"] / pairs) if pairs > 0 else None,
        "mean_kendall_w": float(stat["w_sum"] / w_count) if w_count > 0 else None,
    }


def project_figures(table: OutcomeTable) -> dict[str, float | int | None]:
    """The §6 project figures, plus the counts they rest on."""
    figures: dict[str, float | int | None] = dict(
        figures_from_sums(prompt_stats(table).sum(axis=0))
    )
    figures["n_prompts"] = len(table.prompt_ids)
    figures["n_judgments"] = len(table.judgment_labeler)
    figures["n_units"] = int((table.unit_counts.sum(axis=1) >= 2).sum())
    return figures


def bootstrap_ci(
    table: OutcomeTable,
    n_resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
    stats: np.ndarray | None = None,
) -> dict[str, tuple[float, float] | None]:
    """Percentile confidence intervals of the project figures, resampling prompts.

    Each resample draws as many prompts as there are, with replacement; since every
    figure is a function of per-prompt sums, a resample is a weighted sum, computed
    for a batch of resamples at once. Seeded: the same table and seed give the same
    intervals. A figure undefined in more than half of the resamples gets ``None``.
    ``stats``: the table's :func:`prompt_stats`, when the caller has them already.
    """
    if n_resamples < 1 or not 0 < level < 1:
        raise ValueError("n_resamples must be >= 1 and level within (0, 1)")
    stats = prompt_stats(table) if stats is None else stats
    n_prompts = len(stats)
    if n_prompts == 0:
        return dict.fromkeys(FIGURES)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in FIGURES}
    batch = max(1, min(n_resamples, 2_000_000 // n_prompts))
    # Bounded draws below 2**32 come from the generator's 32-bit stream whatever the
    # dtype: int32 draws are the same numbers, cheaper to make and to count.
    dtype = np.int32 if n_prompts < 2**31 else np.int64
    weights = np.empty((batch, n_prompts))
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        draws = rng.integers(0, n_prompts, (size, n_prompts), dtype=dtype)
        for row, drawn in enumerate(draws):
            weights[row] = np.bincount(drawn, minlength=n_prompts)
        # One BLAS thread: a second one only spins against the web workers and PostgreSQL
        # (the resample sums took twice the CPU with two threads on 2 cores; same results).
        with threadpool_limits(1, user_api="blas"):
            resampled = weights[:size] @ stats
        for sums in resampled:
            for name, value in figures_from_sums(sums).items():
                if value is not None:
                    samples[name].append(value)
    tail = (1 - level) / 2 * 100
    return {
        name: (
            (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
            if len(values) * 2 > n_resamples
            else None
        )
        for name, values in samples.items()
    }


def _ranks(tiers: Sequence[Sequence[str]], ids: Sequence[str]) -> list[float]:
    """Average rank (1 = best) of each id of ``ids``."""
    rank_of: dict[str, float] = {}
    done = 0
    for tier in tiers:
        for cid in tier:
            rank_of[cid] = done + (len(tier) + 1) / 2
        done += len(tier)
    return [rank_of[cid] for cid in ids]


def prompt_figures(
    rankings: Sequence[Sequence[Sequence[str]]], completion_ids: Sequence[str]
) -> dict[str, float | None]:
    """Cheap figures of one prompt, for use inside a judgment's transaction.

    ``pairwise_agreement``: share of agreeing judgment pairs over the prompt's
    completion pairs (None with fewer than 2 rankings). ``kendall_w``: tie-corrected
    W (None with fewer than 2 rankings, fewer than 3 completions, or no variation).
    """
    if len(rankings) < 2:
        return {"pairwise_agreement": None, "kendall_w": None}
    outcomes = [pairwise_outcomes(tiers) for tiers in rankings]
    agreeing = total = 0
    for key in outcomes[0]:
        values = [o[key] for o in outcomes]
        for a in range(len(values)):
            for b in range(a + 1, len(values)):
                agreeing += values[a] == values[b]
                total += 1
    w = None
    if len(completion_ids) >= 3:
        try:
            w = kendall_w([_ranks(tiers, completion_ids) for tiers in rankings])
        except AgreementUndefined:
            w = None
    return {"pairwise_agreement": agreeing / total if total else None, "kendall_w": w}

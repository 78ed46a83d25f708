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
from dataclasses import dataclass

import numpy as np

from app.domain.agreement import (
    AgreementUndefined,
    alpha_from_coincidences,
    delta_matrix,
    kendall_w,
)
from app.domain.outcomes import OutcomeTable
from app.domain.rankings import pairwise_outcomes

OUTCOME_VALUES = (-1, 0, 1)
FIGURES = ("alpha_nominal", "alpha_interval", "pairwise_agreement", "mean_kendall_w")


@dataclass(frozen=True)
class PromptStats:
    """Additive per-prompt statistics: any figure of a set of prompts is a function of
    their sums, which makes bootstrapping prompts a weighted sum."""

    coincidences: np.ndarray  # prompts x 3 x 3
    agreeing_pairs: np.ndarray  # prompts
    judgment_pairs: np.ndarray  # prompts
    kendall_w: np.ndarray  # prompts; NaN where W is not defined


def _alpha(coincidences: np.ndarray, level: str) -> float | None:
    delta = delta_matrix(OUTCOME_VALUES, level, coincidences.sum(axis=1))
    try:
        return alpha_from_coincidences(coincidences, delta)
    except AgreementUndefined:
        return None


def _per_prompt_coincidences(table: OutcomeTable) -> np.ndarray:
    counts = table.unit_counts
    m = counts.sum(axis=1)
    weight = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    per_unit = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(3)
    per_unit *= weight[:, None, None]
    n_prompts = len(table.prompt_ids)
    flat = per_unit.reshape(len(counts), 9)
    sums = [np.bincount(table.unit_prompt, flat[:, c], minlength=n_prompts) for c in range(9)]
    return np.stack(sums, axis=1).reshape(n_prompts, 3, 3)


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


def prompt_stats(table: OutcomeTable) -> PromptStats:
    """The additive per-prompt statistics behind every project figure."""
    counts = table.unit_counts
    n_prompts = len(table.prompt_ids)
    agreeing = (counts * (counts - 1) / 2).sum(axis=1)
    m = counts.sum(axis=1)
    return PromptStats(
        coincidences=_per_prompt_coincidences(table),
        agreeing_pairs=np.bincount(table.unit_prompt, agreeing, minlength=n_prompts),
        judgment_pairs=np.bincount(table.unit_prompt, m * (m - 1) / 2, minlength=n_prompts),
        kendall_w=_per_prompt_w(table),
    )


def _figures_from_sums(
    coincidences: np.ndarray, agreeing: float, pairs: float, w_sum: float, w_count: float
) -> dict[str, float | None]:
    return {
        "alpha_nominal": _alpha(coincidences, "nominal"),
        "alpha_interval": _alpha(coincidences, "interval"),
        "pairwise_agreement": agreeing / pairs if pairs > 0 else None,
        "mean_kendall_w": w_sum / w_count if w_count > 0 else None,
    }


def project_figures(table: OutcomeTable) -> dict[str, float | int | None]:
    """The §6 project figures, plus the counts they rest on."""
    stats = prompt_stats(table)
    has_w = ~np.isnan(stats.kendall_w)
    figures: dict[str, float | int | None] = dict(
        _figures_from_sums(
            stats.coincidences.sum(axis=0),
            float(stats.agreeing_pairs.sum()),
            float(stats.judgment_pairs.sum()),
            float(stats.kendall_w[has_w].sum()),
            float(has_w.sum()),
        )
    )
    figures["n_prompts"] = len(table.prompt_ids)
    figures["n_judgments"] = len(table.judgment_labeler)
    figures["n_units"] = int((table.unit_counts.sum(axis=1) >= 2).sum())
    return figures


def bootstrap_ci(
    table: OutcomeTable, n_resamples: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float] | None]:
    """Percentile confidence intervals of the project figures, resampling prompts.

    Each resample draws as many prompts as there are, with replacement; since every
    figure is a function of per-prompt sums, a resample is a weighted sum. Seeded,
    so the same table and seed give the same intervals. A figure undefined in more
    than half of the resamples gets ``None``.
    """
    if n_resamples < 1 or not 0 < level < 1:
        raise ValueError("n_resamples must be >= 1 and level within (0, 1)")
    stats = prompt_stats(table)
    n_prompts = len(table.prompt_ids)
    if n_prompts == 0:
        return dict.fromkeys(FIGURES)
    has_w = ~np.isnan(stats.kendall_w)
    columns = np.column_stack(
        [
            stats.coincidences.reshape(n_prompts, 9),
            stats.agreeing_pairs,
            stats.judgment_pairs,
            np.where(has_w, stats.kendall_w, 0.0),
            has_w.astype(float),
        ]
    )
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in FIGURES}
    for _ in range(n_resamples):
        weights = np.bincount(rng.integers(0, n_prompts, n_prompts), minlength=n_prompts)
        sums = weights @ columns
        figures = _figures_from_sums(sums[:9].reshape(3, 3), *sums[9:])
        for name, value in figures.items():
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

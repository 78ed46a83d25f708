"""Per-labeler figures of SPEC §6, vectorized over an OutcomeTable.

For each labeler (sorted by name)::

    {"labeler": name, "judgments": n, "agreement": x|None,
     "kappa": {other: x|None, ...}, "gold_accuracy": x|None,
     "position_bias": x|None, "median_seconds": x|None}

* ``judgments``: all their judgments, ``reject_all`` included.
* ``agreement``: share of their pairwise outcomes equal to the outcome implied by
  the leave-one-out consensus, i.e. the consensus order of the *other* ranking
  judgments of the same prompt (Borda points, which order completions exactly as
  Bradley–Terry does on complete rankings; equal points mean a tie). Prompts where
  they are the only ranking judgment do not count.
* ``kappa``: Cohen's kappa with each other labeler sharing at least
  ``KAPPA_MIN_SHARED_PROMPTS`` prompts, over the pairwise outcomes (+1/-1/0) both
  gave on their shared units; ``None`` where kappa is undefined (no variation).
* ``gold_accuracy``: share of their pairwise outcomes on gold prompts equal to the
  gold ranking's outcome.
* ``position_bias``: share of their ranking judgments with a known display order in
  which the first-shown completion was ranked in the top tier.
* ``median_seconds``: median ``duration_ms / 1000`` of their judgments that have one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.domain.agreement import AgreementUndefined, kappa_from_table
from app.domain.outcomes import NO_GOLD, OutcomeTable, RankBlock

KAPPA_MIN_SHARED_PROMPTS = 20


def _share(hits: np.ndarray, counts: np.ndarray, i: int) -> float | None:
    return float(hits[i] / counts[i]) if counts[i] > 0 else None


def _row_sums(matrix: np.ndarray) -> np.ndarray:
    """Each row's sum, column by column (faster than a reduction over a short axis)."""
    total = np.zeros(len(matrix), dtype=np.int64)
    for column in matrix.T:
        total += column
    return total


def _loo_agreement(table: OutcomeTable) -> tuple[np.ndarray, np.ndarray]:
    """Per labeler: entries agreeing with the leave-one-out consensus, entries compared."""
    n_labelers, n_prompts = len(table.labelers), len(table.prompt_ids)
    hits, counts = np.zeros(n_labelers), np.zeros(n_labelers)
    for k, block in table.blocks.items():
        points = k - block.ranks
        keys = (block.prompt[:, None] * k + np.arange(k)).ravel()
        totals = np.bincount(keys, points.ravel(), minlength=n_prompts * k).reshape(n_prompts, k)
        others = totals[block.prompt] - points
        i, j = block.pair_index
        consensus = np.sign(others[:, i] - others[:, j])
        has_others = np.bincount(block.prompt, minlength=n_prompts)[block.prompt] >= 2
        labeler = table.judgment_labeler[block.judgment]
        agree = _row_sums(block.values == consensus) * has_others  # integers: exact sums
        hits += np.bincount(labeler, agree, minlength=n_labelers)
        counts += np.bincount(labeler, has_others, minlength=n_labelers) * len(i)
    return hits, counts


def _gold_accuracy(table: OutcomeTable) -> tuple[np.ndarray, np.ndarray]:
    """Per labeler: entries equal to the gold outcome, entries on units with gold."""
    unit, judgment, value = table.entries
    gold = table.unit_gold[unit]
    known = gold != NO_GOLD
    labeler = table.judgment_labeler[judgment[known]]
    n_labelers = len(table.labelers)
    hits = np.bincount(labeler, (value[known] == gold[known]).astype(float), minlength=n_labelers)
    return hits, np.bincount(labeler, minlength=n_labelers).astype(float)


def _row_pairs(block: RankBlock) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows (a, b) of the block that judged the same prompt."""
    order = np.argsort(block.prompt, kind="stable")
    prompts = block.prompt[order]
    starts = np.flatnonzero(np.r_[True, prompts[1:] != prompts[:-1]])
    sizes = np.diff(np.r_[starts, len(prompts)])
    firsts, seconds = [], []
    for size in np.unique(sizes[sizes >= 2]):
        group = starts[sizes == size][:, None] + np.arange(size)
        a, b = np.triu_indices(size, 1)
        firsts.append(order[group[:, a]].ravel())
        seconds.append(order[group[:, b]].ravel())
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _pair_confusions(table: OutcomeTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labeler pairs (a < b) sharing prompts: keys a * L + b, shared prompts, 3x3 tables."""
    n_labelers = len(table.labelers)
    joints, prompt_keys, pair_counts = [], [], []
    for block in table.blocks.values():
        rows_a, rows_b = _row_pairs(block)
        lab_a = table.judgment_labeler[block.judgment[rows_a]]
        lab_b = table.judgment_labeler[block.judgment[rows_b]]
        differ = lab_a != lab_b
        swap = lab_a > lab_b
        first = np.where(swap, rows_b, rows_a)[differ]
        second = np.where(swap, rows_a, rows_b)[differ]
        pair_key = np.minimum(lab_a, lab_b)[differ] * n_labelers + np.maximum(lab_a, lab_b)[differ]
        prompt_keys.append(pair_key)
        pairs = block.values.shape[1]
        joints.append(((block.values[first] + 1) * 3 + (block.values[second] + 1)).ravel())
        pair_counts.append(pairs)
    if not joints:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros((0, 3, 3))
    unique, inverse = np.unique(np.concatenate(prompt_keys), return_inverse=True)
    shared = np.bincount(inverse, minlength=len(unique))
    bounds = np.cumsum([len(k) for k in prompt_keys])[:-1]
    entry_index = np.concatenate(
        [
            np.repeat(part, pairs)
            for part, pairs in zip(np.split(inverse, bounds), pair_counts, strict=True)
        ]
    )
    flat = np.bincount(entry_index * 9 + np.concatenate(joints), minlength=len(unique) * 9)
    return unique, shared, flat.reshape(len(unique), 3, 3).astype(float)


def _kappas(table: OutcomeTable) -> list[dict[str, float | None]]:
    """Per labeler index: {other name: kappa} for others sharing enough prompts."""
    n_labelers = len(table.labelers)
    result: list[dict[str, float | None]] = [{} for _ in range(n_labelers)]
    keys, shared, confusions = _pair_confusions(table)
    for key, count, confusion in zip(keys, shared, confusions, strict=True):
        if count < KAPPA_MIN_SHARED_PROMPTS:
            continue
        a, b = divmod(int(key), n_labelers)
        try:
            kappa: float | None = kappa_from_table(confusion)
        except AgreementUndefined:
            kappa = None
        result[a][table.labelers[b]] = kappa
        result[b][table.labelers[a]] = kappa
    return [dict(sorted(d.items())) for d in result]


def _medians(table: OutcomeTable) -> list[float | None]:
    known = ~np.isnan(table.seconds)
    labeler, seconds = table.judgment_labeler[known], table.seconds[known]
    order = np.argsort(seconds)  # then grouped by labeler, stably (small integer keys)
    small = labeler.astype(np.int16) if len(table.labelers) < 2**15 else labeler
    order = order[np.argsort(small[order], kind="stable")]
    labeler, seconds = labeler[order], seconds[order]
    counts = np.bincount(labeler, minlength=len(table.labelers))
    starts = np.cumsum(counts) - counts  # empty when there are no labelers
    return [
        float((seconds[s + (c - 1) // 2] + seconds[s + c // 2]) / 2) if c else None
        for s, c in zip(starts, counts, strict=True)
    ]


def labeler_figures(table: OutcomeTable) -> list[dict[str, Any]]:
    """The SPEC §6 ``per_labeler`` list (see the module docstring)."""
    n_labelers = len(table.labelers)
    judgments = np.bincount(table.judgment_labeler, minlength=n_labelers)
    loo_hits, loo_counts = _loo_agreement(table)
    gold_hits, gold_counts = _gold_accuracy(table)
    known = table.first_shown_on_top >= 0
    shown_labeler = table.judgment_labeler[known]
    top_hits = np.bincount(shown_labeler, table.first_shown_on_top[known], minlength=n_labelers)
    top_counts = np.bincount(shown_labeler, minlength=n_labelers)
    kappas = _kappas(table)
    medians = _medians(table)
    return [
        {
            "labeler": name,
            "judgments": int(judgments[i]),
            "agreement": _share(loo_hits, loo_counts, i),
            "kappa": kappas[i],
            "gold_accuracy": _share(gold_hits, gold_counts, i),
            "position_bias": _share(top_hits, top_counts, i),
            "median_seconds": medians[i],
        }
        for i, name in enumerate(table.labelers)
    ]

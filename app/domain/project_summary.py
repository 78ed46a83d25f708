"""The project's agreement summary (SPEC §6) from judgment records, without a database.

``project_summary`` gives the four figures of a whole project with bootstrap CIs;
``FigureAccumulator`` gives the same figures (no CIs) for a stream of export prompts in
constant memory. Values come out as plain, rounded JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from app.domain.agreement import InvalidAgreementData
from app.domain.errors import ValidationFailed
from app.domain.figures import STAT_COLUMNS, bootstrap_ci, figures_from_sums, prompt_stats
from app.domain.labeler_figures import KAPPA_MIN_SHARED_PROMPTS
from app.domain.outcomes import JudgmentRecord, OutcomeTable
from app.domain.pairs import PromptData

BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
CHUNK_PROMPTS = 5000

AGREEMENT_METHOD = {
    "units": "(prompt, unordered completion pair); values +1, 0, -1",
    "ci": f"{CI_LEVEL:.0%} percentile bootstrap over prompts, "
    f"{BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
    "kappa_min_shared_prompts": KAPPA_MIN_SHARED_PROMPTS,
    "agreement": "share of a labeler's pairwise outcomes equal to the leave-one-out "
    "consensus of the other judgments of the same prompt",
}
"""How the figures are computed, as the agreement API describes it."""


def records_of_prompt(prompt: PromptData) -> Iterator[JudgmentRecord]:
    """The judgments of one streamed export prompt as records (no timing, no display order)."""
    for judgment in prompt.judgments:
        yield JudgmentRecord(
            labeler=judgment.labeler,
            prompt_id=prompt.prompt_id,
            tiers=None if judgment.reject_all else judgment.tiers,
            gold=prompt.gold,
        )


def outcome_table(records: Iterable[JudgmentRecord]) -> OutcomeTable:
    """Index records for the figures; inconsistent stored rankings become a clear error."""
    try:
        return OutcomeTable.from_records(records)
    except InvalidAgreementData as exc:
        raise ValidationFailed.single("judgments", str(exc)) from exc


def rounded(value: Any, digits: int = 4) -> Any:
    """Plain JSON values: floats rounded, numpy scalars converted, tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float | np.floating):
        return round(float(value), digits)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, tuple | list):
        return [rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value


def _counts(table: OutcomeTable) -> dict[str, int]:
    return {
        "prompts": len(table.prompt_ids),
        "judgments": len(table.judgment_labeler),
        "units": int((table.unit_counts.sum(axis=1) >= 2).sum()),
        "labelers": len(table.labelers),
    }


def project_summary(table: OutcomeTable) -> dict[str, Any]:
    """The project figures, their bootstrap CIs (resampling prompts) and the counts."""
    summary: dict[str, Any] = figures_from_sums(prompt_stats(table).sum(axis=0))
    summary["ci95"] = bootstrap_ci(
        table, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED, level=CI_LEVEL
    )
    summary["counts"] = _counts(table)
    return rounded(summary)


class FigureAccumulator:
    """The project figures of a stream of prompts, in constant memory.

    Every figure is a function of column sums of per-prompt statistics, so prompts
    are indexed ``chunk_prompts`` at a time and only the running sums are kept (no
    bootstrap: resampling prompts would need every prompt's statistics).
    """

    def __init__(self, chunk_prompts: int | None = None) -> None:
        self.chunk_prompts = chunk_prompts or CHUNK_PROMPTS
        self.records: list[JudgmentRecord] = []
        self.pending = 0
        self.sums = np.zeros(len(STAT_COLUMNS))
        self.counts = {"prompts": 0, "judgments": 0, "units": 0}
        self.labelers: set[str] = set()

    def add(self, prompt: PromptData) -> None:
        if not prompt.judgments:
            return
        self.records.extend(records_of_prompt(prompt))
        self.pending += 1
        if self.pending >= self.chunk_prompts:
            self._fold()

    def _fold(self) -> None:
        if not self.records:
            return
        table = outcome_table(self.records)
        self.sums += prompt_stats(table).sum(axis=0)
        for key, value in _counts(table).items():
            if key in self.counts:
                self.counts[key] += value
        self.labelers.update(table.labelers)
        self.records, self.pending = [], 0

    def summary(self) -> dict[str, Any]:
        """The four figures and the counts (as in :func:`project_summary`, without CIs)."""
        self._fold()
        summary: dict[str, Any] = figures_from_sums(self.sums)
        summary["counts"] = {**self.counts, "labelers": len(self.labelers)}
        return rounded(summary)

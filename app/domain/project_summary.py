"""The project's agreement summary (SPEC §6) from judgment records, without a database.

``project_summary`` gives the four figures of a whole project with bootstrap CIs;
``FigureAccumulator`` gives the same figures (no CIs) for a stream of export prompts in
constant memory. Values come out as plain, rounded JSON.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from app.domain.agreement import InvalidAgreementData
from app.domain.errors import ValidationFailed
from app.domain.figures import STAT_COLUMNS, bootstrap_ci, figures_from_sums, prompt_stats
from app.domain.json_cache import JsonCache
from app.domain.labeler_figures import KAPPA_MIN_SHARED_PROMPTS
from app.domain.outcomes import JudgmentRecord, OutcomeTable, check_prompt

BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
CHUNK_PROMPTS = 5000
MAX_PATTERNS = 100_000  # FigureAccumulator forgets its patterns past this (bounded memory)

AGREEMENT_METHOD = {
    "units": "(prompt, unordered completion pair); values +1, 0, -1",
    "ci": f"{CI_LEVEL:.0%} percentile bootstrap over prompts, "
    f"{BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
    "kappa_min_shared_prompts": KAPPA_MIN_SHARED_PROMPTS,
    "agreement": "share of a labeler's pairwise outcomes equal to the leave-one-out "
    "consensus of the other judgments of the same prompt",
}
"""How the figures are computed, as the agreement API describes it."""


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
    stats = prompt_stats(table)
    summary: dict[str, Any] = figures_from_sums(stats.sum(axis=0))
    summary["ci95"] = bootstrap_ci(
        table, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED, level=CI_LEVEL, stats=stats
    )
    summary["counts"] = _counts(table)
    return rounded(summary)


class FigureAccumulator:
    """The project figures of a stream of prompts, in constant memory.

    Every figure is a function of column sums of per-prompt statistics, and a prompt's
    statistics depend only on its multiset of rankings. So prompts are counted by that
    pattern, each distinct pattern's statistics are computed once (``chunk_prompts``
    prompts are folded at a time), and only running sums are kept (no bootstrap:
    resampling prompts would need every prompt's statistics).
    """

    def __init__(self, chunk_prompts: int | None = None) -> None:
        self.chunk_prompts = chunk_prompts or CHUNK_PROMPTS
        self.cache = JsonCache()
        self.patterns: dict[tuple[Any, ...], int] = {}  # pattern -> row of self.stats
        self.new: list[tuple[Any, ...]] = []  # patterns without statistics yet
        self.stats = np.zeros((0, len(STAT_COLUMNS) + 1))  # + units with >= 2 values
        self.pending: dict[int, int] = {}  # pattern row -> prompts since the last fold
        self.seen = 0
        self.sums = np.zeros(len(STAT_COLUMNS) + 1)
        self.counts = {"prompts": 0, "judgments": 0}
        self.labelers: set[Hashable] = set()

    def add_prompt(
        self, prompt_id: str, labelers: Sequence[Hashable], ranked: Sequence[str], gold: str | None
    ) -> None:
        """One prompt's judgments: their labelers (names or ids), the sorted JSON texts of
        the rankings among them, and the gold ranking's JSON text. Inconsistent rankings
        raise ValidationFailed."""
        if not labelers:
            return
        pattern = (gold, *ranked)
        if pattern not in self.patterns:
            self._check(prompt_id, ranked, gold)
        self.add_checked(pattern, labelers)

    def add_checked(self, pattern: tuple[Any, ...], labelers: Sequence[Hashable]) -> None:
        """:meth:`add_prompt` of a prompt with judgments whose pattern ``(gold, *ranked)``
        has been checked already (the hot path of an export: one per prompt)."""
        self.counts["prompts"] += 1
        self.counts["judgments"] += len(labelers)
        self.labelers.update(labelers)
        row = self.patterns.get(pattern)
        if row is None:
            row = self.patterns[pattern] = len(self.patterns)
            self.new.append(pattern)
        pending = self.pending
        pending[row] = pending.get(row, 0) + 1
        self.seen += 1
        if self.seen >= self.chunk_prompts:
            self._fold()

    def _records(self, number: int, ranked: Sequence[str], gold: str | None) -> list[Any]:
        prompt_id, gold_tiers = f"{number:012d}", self.cache.tiers(gold)
        tiers = [self.cache.tiers(r) for r in ranked] or [None]
        return [JudgmentRecord(f"j{n}", prompt_id, t, gold=gold_tiers) for n, t in enumerate(tiers)]

    def _check(self, prompt_id: str, ranked: Sequence[str], gold: str | None) -> None:
        """The error the outcome table would raise for this prompt, named by its real id."""
        records = [replace(r, prompt_id=prompt_id) for r in self._records(0, ranked, gold)]
        try:
            check_prompt(records)
        except InvalidAgreementData as exc:
            raise ValidationFailed.single("judgments", str(exc)) from exc

    def _fold(self) -> None:
        if self.new:
            first = len(self.stats)
            records = [
                record
                for n, (gold, *ranked) in enumerate(self.new, start=first)
                for record in self._records(n, ranked, gold)
            ]
            table = outcome_table(records)
            pairable = (table.unit_counts.sum(axis=1) >= 2).astype(float)
            units = np.bincount(table.unit_prompt, pairable, minlength=len(self.new))
            self.stats = np.vstack([self.stats, np.column_stack([prompt_stats(table), units])])
            self.new = []
        if self.pending:
            rows = np.fromiter(self.pending, dtype=np.int64, count=len(self.pending))
            weights = np.fromiter(self.pending.values(), dtype=float, count=len(self.pending))
            self.sums += weights @ self.stats[rows]
        self.pending, self.seen = {}, 0
        if len(self.patterns) > MAX_PATTERNS:
            self.patterns, self.stats = {}, self.stats[:0]

    def summary(self) -> dict[str, Any]:
        """The four figures and the counts (as in :func:`project_summary`, without CIs)."""
        self._fold()
        summary: dict[str, Any] = figures_from_sums(self.sums[:-1])
        summary["counts"] = {
            "prompts": self.counts["prompts"],
            "judgments": self.counts["judgments"],
            "units": int(round(self.sums[-1])),
            "labelers": len(self.labelers),
        }
        return rounded(summary)

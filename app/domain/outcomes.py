"""Pairwise outcomes of many judgments as numpy arrays (SPEC §6).

For each prompt and each unordered completion pair {i, j} (i < j in string order),
each ranking judgment gives +1 (i above j), -1 (j above i) or 0 (tie). A *unit* is
one (prompt, pair); an *entry* is one judgment's value on one unit. The service
layer feeds :class:`JudgmentRecord` rows straight from the database; everything
after :meth:`OutcomeTable.from_records` is vectorized.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from app.domain.agreement import InvalidAgreementData

Tiers = Sequence[Sequence[str]]
NO_GOLD = 2  # marks a unit without a gold outcome in OutcomeTable.unit_gold


@dataclass(frozen=True, slots=True)
class JudgmentRecord:
    """One judgment as agreement figures need it.

    ``tiers`` is None for a ``reject_all`` judgment; ``shown_order`` is the
    completion order the labeler saw (None when unknown); ``gold`` is the prompt's
    gold ranking, if any (the same on every record of a prompt).
    """

    labeler: str
    prompt_id: str
    tiers: Tiers | None
    shown_order: Sequence[str] | None = None
    duration_ms: int | None = None
    gold: Tiers | None = None


@dataclass(frozen=True)
class RankBlock:
    """Ranking judgments over prompts with the same number K of completions.

    ``tiers[r, c]`` is the 0-based tier (0 = best) judgment ``judgment[r]`` gave the
    c-th completion of prompt ``prompt[r]`` (completions sorted by id).
    """

    k: int
    judgment: np.ndarray
    prompt: np.ndarray
    tiers: np.ndarray

    @cached_property
    def pair_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Columns (i, j), i < j, of every completion pair, in unit order."""
        return np.triu_indices(self.k, 1)

    @cached_property
    def values(self) -> np.ndarray:
        """rows x pairs outcomes: +1 when completion i is above j, -1 below, 0 tied."""
        i, j = self.pair_index
        return np.sign(self.tiers[:, j] - self.tiers[:, i]).astype(np.int8)

    @cached_property
    def _better_equal(self) -> tuple[np.ndarray, np.ndarray]:
        """rows x K: how many completions of the row are in a better tier, in the same one
        (itself included); one pass per column, K being small."""
        t = self.tiers
        better = np.zeros(t.shape, dtype=np.int64)
        equal = np.zeros(t.shape, dtype=np.int64)
        for d in range(self.k):
            column = t[:, d : d + 1]
            better += column < t
            equal += column == t
        return better, equal

    @cached_property
    def ranks(self) -> np.ndarray:
        """rows x K average ranks, 1 = best, ties sharing the mean rank."""
        better, equal = self._better_equal
        return 1.0 + better + (equal - 1) / 2.0

    @cached_property
    def tie_sums(self) -> np.ndarray:
        """Per row, the sum of t^3 - t over its groups of tied completions."""
        _, equal = self._better_equal
        return (equal**2 - 1).sum(axis=1).astype(float)


@dataclass(frozen=True)
class OutcomeTable:
    """All judgments of a project, indexed for vectorized agreement figures.

    Prompts are sorted by id and labelers by name, so the figures (and seeded
    bootstraps) do not depend on the order of the records.
    """

    prompt_ids: list[str]
    labelers: list[str]
    n_completions: np.ndarray
    unit_offset: np.ndarray
    unit_gold: np.ndarray
    judgment_labeler: np.ndarray
    judgment_prompt: np.ndarray
    first_shown_on_top: np.ndarray
    seconds: np.ndarray
    blocks: dict[int, RankBlock]

    @property
    def n_units(self) -> int:
        return int(self.unit_offset[-1]) if len(self.unit_offset) else 0

    @cached_property
    def unit_prompt(self) -> np.ndarray:
        """Prompt index of every unit."""
        pairs = np.diff(self.unit_offset)
        return np.repeat(np.arange(len(pairs)), pairs)

    @cached_property
    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit, judgment, value) of every entry, all blocks concatenated."""
        units, judgments, values = [], [], []
        for block in self.blocks.values():
            pairs = block.values.shape[1]
            units.append((self.unit_offset[block.prompt][:, None] + np.arange(pairs)).ravel())
            judgments.append(np.repeat(block.judgment, pairs))
            values.append(block.values.ravel())
        if not units:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=np.int8)
        return np.concatenate(units), np.concatenate(judgments), np.concatenate(values)

    @cached_property
    def unit_counts(self) -> np.ndarray:
        """units x 3 counts of the values -1, 0, +1 given to each unit."""
        unit, _, value = self.entries
        flat = np.bincount(unit * 3 + (value + 1), minlength=self.n_units * 3)
        return flat.reshape(self.n_units, 3).astype(float)

    @classmethod
    def from_records(cls, records: Iterable[JudgmentRecord]) -> OutcomeTable:
        """Index the records; raises InvalidAgreementData when a prompt's rankings differ
        in the completions they cover."""
        return _build(records)


def _prompt_completions(group: list[JudgmentRecord]) -> tuple[str, ...]:
    """The sorted completion ids of one prompt, from its first ranking (or its gold)."""
    for record in group:
        tiers = record.tiers or record.gold
        if tiers:
            return tuple(sorted(cid for tier in tiers for cid in tier))
    return ()


def _tier_vector(tiers: Tiers, index: dict[str, int], prompt_id: str) -> list[int]:
    """The tier of each completion, in ``index`` order; checks the ranking covers them once."""
    vector = [-1] * len(index)
    try:
        for number, tier in enumerate(tiers):
            for cid in tier:
                vector[index[cid]] = number
    except KeyError:
        vector = []
    if -1 in vector or not vector or sum(map(len, tiers)) != len(index):
        raise InvalidAgreementData(f"prompt {prompt_id!r}: rankings cover different completions")
    return vector


def _gold_outcomes(gold: Tiers | None, index: dict[str, int], prompt_id: str) -> list[int]:
    """Gold outcome per completion pair (unit order), or NO_GOLD for each pair."""
    k = len(index)
    if gold is None:
        return [NO_GOLD] * (k * (k - 1) // 2)
    vector = _tier_vector(gold, index, prompt_id)
    return [
        (vector[a] < vector[b]) - (vector[a] > vector[b]) for a in range(k) for b in range(a + 1, k)
    ]


@dataclass
class _Rankings:
    """Ranking judgments gathered prompt by prompt, grouped by completion count."""

    n_completions: list[int] = field(default_factory=list)
    gold: list[int] = field(default_factory=list)
    by_k: dict[int, tuple[list[int], list[int], list[int]]] = field(default_factory=dict)

    def add_prompt(self, p: int, prompt_id: str, group: list[JudgmentRecord], first: int) -> None:
        """Add prompt ``p`` whose judgments are numbered from ``first`` on."""
        ids = _prompt_completions(group)
        index = {cid: i for i, cid in enumerate(ids)}
        self.n_completions.append(len(ids))
        self.gold.extend(_gold_outcomes(group[0].gold, index, prompt_id))
        judgments, prompts, tiers = self.by_k.setdefault(len(ids), ([], [], []))
        for number, record in enumerate(group, start=first):
            if record.tiers is not None:
                judgments.append(number)
                prompts.append(p)
                tiers.extend(_tier_vector(record.tiers, index, prompt_id))

    def blocks(self) -> dict[int, RankBlock]:
        return {
            k: RankBlock(
                k,
                np.asarray(judgments, np.int64),
                np.asarray(prompts, np.int64),
                np.asarray(tiers, np.int16).reshape(len(judgments), k),
            )
            for k, (judgments, prompts, tiers) in sorted(self.by_k.items())
            if judgments and k >= 2
        }


def check_prompt(records: list[JudgmentRecord]) -> None:
    """Raise InvalidAgreementData as :meth:`OutcomeTable.from_records` would for these
    records of one prompt (rankings or gold covering different completions)."""
    _Rankings().add_prompt(0, records[0].prompt_id, records, 0)


def _first_on_top(record: JudgmentRecord) -> int:
    """1 when the first completion shown was ranked in the top tier, 0 if not, -1 unknown."""
    if record.tiers is None or not record.shown_order:
        return -1
    return int(record.shown_order[0] in record.tiers[0])


def _build(records: Iterable[JudgmentRecord]) -> OutcomeTable:
    by_prompt: dict[str, list[JudgmentRecord]] = {}
    for record in records:
        group = by_prompt.get(record.prompt_id)
        if group is None:
            by_prompt[record.prompt_id] = [record]
        else:
            group.append(record)
    prompt_ids = sorted(by_prompt)
    groups = [by_prompt[prompt_id] for prompt_id in prompt_ids]
    ordered = [record for group in groups for record in group]  # judgment numbering
    labelers = sorted({record.labeler for record in ordered})
    labeler_index = {name: i for i, name in enumerate(labelers)}
    rankings, first = _Rankings(), 0
    for p, (prompt_id, group) in enumerate(zip(prompt_ids, groups, strict=True)):
        rankings.add_prompt(p, prompt_id, group, first)
        first += len(group)
    k = np.asarray(rankings.n_completions, dtype=np.int64)
    durations = [record.duration_ms for record in ordered]
    return OutcomeTable(
        prompt_ids=prompt_ids,
        labelers=labelers,
        n_completions=k,
        unit_offset=np.concatenate(([0], np.cumsum(k * (k - 1) // 2))).astype(np.int64),
        unit_gold=np.asarray(rankings.gold, dtype=np.int8),
        judgment_labeler=np.asarray([labeler_index[r.labeler] for r in ordered], dtype=np.int64),
        judgment_prompt=np.repeat(np.arange(len(groups)), [len(g) for g in groups]),
        first_shown_on_top=np.asarray([_first_on_top(r) for r in ordered], dtype=np.int8),
        seconds=np.asarray(durations, dtype=float) / 1000,  # None becomes NaN
        blocks=rankings.blocks(),
    )

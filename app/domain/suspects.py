"""From a suspects run's ``suspects.jsonl`` (``training.suspects``) to flagged judgments.

The run scores pairs; a judgment over K completions gave up to K(K−1)/2 of them (export
strategy ``all``: one row per labeler and pair, so ``(prompt_id, labeler)`` names the
judgment). A judgment is flagged when any of its pairs is; it is shown with its most
confidently contradicted pair (the first in the file's rank order) and ranked by it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.domain.errors import ValidationFailed
from training.jsonl import numbered_rows


@dataclass(frozen=True, slots=True)
class FlaggedJudgment:
    """One flagged judgment: its key, the pair shown, and how sure the model is.

    ``p_labeled`` is the out-of-fold probability that the labeler's order of that pair is
    right; ``confidence = 1 − p_labeled`` orders the list. ``pairs`` counts its flagged pairs.
    """

    rank: int
    prompt_id: str
    labeler: str
    chosen_id: str
    rejected_id: str
    score_margin: float
    p_labeled: float
    pairs: int

    @property
    def confidence(self) -> float:
        return round(1.0 - self.p_labeled, 6)

    @property
    def key(self) -> tuple[str, str]:
        return self.prompt_id, self.labeler


def _flagged_lines(lines: Iterable[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    def invalid(number: int, exc: json.JSONDecodeError) -> ValidationFailed:
        return ValidationFailed.single("suspects.jsonl", f"line {number} is not JSON: {exc.msg}")

    for number, row in numbered_rows(lines, invalid):
        if row.get("flagged") and row.get("labeler") is not None:
            yield number, row


def flagged_judgments(lines: Iterable[str]) -> list[FlaggedJudgment]:
    """The flagged judgments of a ``suspects.jsonl``, most confident first."""
    found: dict[tuple[str, str], FlaggedJudgment] = {}
    counts: dict[tuple[str, str], int] = {}
    for number, row in _flagged_lines(lines):
        try:
            key = (str(row["prompt_id"]), str(row["labeler"]))
            candidate = FlaggedJudgment(
                rank=int(row["rank"]),
                prompt_id=key[0],
                labeler=key[1],
                chosen_id=str(row["chosen_id"]),
                rejected_id=str(row["rejected_id"]),
                score_margin=float(row["score_margin"]),
                p_labeled=float(row["p_labeled"]),
                pairs=1,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationFailed.single(
                "suspects.jsonl", f"line {number} lacks a valid {exc}"
            ) from exc
        counts[key] = counts.get(key, 0) + 1
        if key not in found or candidate.rank < found[key].rank:
            found[key] = candidate
    ordered = sorted(found.values(), key=lambda j: j.rank)
    return [
        FlaggedJudgment(**{**_fields(j), "rank": i, "pairs": counts[j.key]})
        for i, j in enumerate(ordered, start=1)
    ]


def _fields(judgment: FlaggedJudgment) -> dict[str, Any]:
    return {name: getattr(judgment, name) for name in FlaggedJudgment.__slots__}


def flagged_per_labeler(judgments: Iterable[FlaggedJudgment]) -> dict[str, int]:
    """How many judgments of each labeler were flagged."""
    counts: dict[str, int] = {}
    for judgment in judgments:
        counts[judgment.labeler] = counts.get(judgment.labeler, 0) + 1
    return counts

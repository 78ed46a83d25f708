"""Export filters (SPEC §4): which prompts, judgments and pairs go into an export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.errors import Problems, ValidationFailed

TIES_DROP = "drop"
TIES_KEEP = "keep"
TIES_MODES = (TIES_DROP, TIES_KEEP)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_min_judgments(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be a non-negative integer"
    return None


def _check_min_agreement(value: Any) -> str | None:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        return "must be a number between 0 and 1"
    return None


def _check_exclude_labelers(value: Any) -> str | None:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return "must be a list of labeler names"
    return None


def _check_include_gold(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _check_ties(value: Any) -> str | None:
    return None if value in TIES_MODES else f"must be one of {', '.join(TIES_MODES)}"


_CHECKS = {
    "min_judgments": _check_min_judgments,
    "min_agreement": _check_min_agreement,
    "exclude_labelers": _check_exclude_labelers,
    "include_gold": _check_include_gold,
    "ties": _check_ties,
}


@dataclass(frozen=True, slots=True)
class ExportFilters:
    """Selection rules of an export.

    * ``min_judgments``: skip prompts with fewer judgments (``reject_all`` ones count),
      after ``exclude_labelers`` is applied.
    * ``min_agreement``: skip rows whose ``agreement`` is below this (0..1).
    * ``exclude_labelers``: drop these labelers' judgments before anything else.
    * ``include_gold``: export prompts that carry a gold ranking too (quality-control
      prompts are left out by default). The gold ranking itself is never a vote.
    * ``ties``: ``"drop"`` tied pairs, or ``"keep"`` them as rows with ``"tie": true``.
    """

    min_judgments: int = 1
    min_agreement: float = 0.0
    exclude_labelers: tuple[str, ...] = ()
    include_gold: bool = False
    ties: str = TIES_DROP

    @classmethod
    def from_dict(cls, data: Any) -> ExportFilters:
        """Build from a JSON object; unknown keys and bad values raise ValidationFailed.

        Each problem names its field as ``filters.<key>``. ``None`` gives the defaults.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValidationFailed.single("filters", "must be an object")
        problems = Problems()
        for key, value in data.items():
            check = _CHECKS.get(key)
            message = (
                f"unknown filter; known: {', '.join(_CHECKS)}" if check is None else check(value)
            )
            if message is not None:
                problems.add(f"filters.{key}", message)
        problems.raise_if_any()
        values = dict(data)
        if "exclude_labelers" in values:
            values["exclude_labelers"] = tuple(sorted(set(values["exclude_labelers"])))
        if "min_agreement" in values:
            values["min_agreement"] = float(values["min_agreement"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form, as recorded in the export manifest."""
        return {
            "min_judgments": self.min_judgments,
            "min_agreement": self.min_agreement,
            "exclude_labelers": sorted(set(self.exclude_labelers)),
            "include_gold": self.include_gold,
            "ties": self.ties,
        }

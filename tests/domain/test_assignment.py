"""Adaptive overlap policy."""

from __future__ import annotations

import pytest

from app.domain.assignment import needs_more_labels
from app.domain.errors import ValidationFailed


@pytest.mark.parametrize(
    ("agreement", "n", "expected"),
    [
        (None, 0, True),
        (1.0, 2, True),  # below k: always
        (0.4, 3, True),  # contested, room left
        (0.8, 3, False),  # agreed
        (0.6, 3, False),  # exactly at the threshold
        (None, 3, False),  # nothing to measure
        (0.1, 5, False),  # max_labels reached
    ],
)
def test_needs_more_labels(agreement: float | None, n: int, expected: bool) -> None:
    assert needs_more_labels(agreement, n, k=3, max_labels=5, min_agreement=0.6) is expected


def test_max_labels_equal_to_k_turns_adaptivity_off() -> None:
    assert needs_more_labels(0.0, 3, k=3, max_labels=3, min_agreement=0.9) is False


@pytest.mark.parametrize(
    ("k", "max_labels", "min_agreement", "field"),
    [(0, 3, 0.5, "k"), (3, 2, 0.5, "max_labels"), (3, 5, 1.5, "min_agreement")],
)
def test_inconsistent_settings_are_refused(
    k: int, max_labels: int, min_agreement: float, field: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        needs_more_labels(None, 0, k, max_labels, min_agreement)
    assert exc.value.details[0]["field"] == field

"""Assignment policy, pure: how many labels a prompt should collect."""

from __future__ import annotations

from app.domain.errors import ValidationFailed


def needs_more_labels(
    prompt_agreement: float | None,
    n_judgments: int,
    k: int,
    max_labels: int,
    min_agreement: float,
) -> bool:
    """Adaptive overlap: should this prompt be handed out again?

    * Below ``k`` judgments (the project's ``labels_per_prompt``): yes, always.
    * At or above ``max_labels``: never (``max_labels == k`` turns adaptivity off).
    * In between: only while the prompt's pairwise agreement is known and below
      ``min_agreement`` — a contested prompt earns extra labels, up to ``max_labels``.
      Unknown agreement (fewer than two rankings, e.g. ``reject_all`` judgments)
      asks for nothing more.

    Raises ValidationFailed naming the setting when the settings are inconsistent.
    """
    if k < 1:
        raise ValidationFailed.single("k", "must be at least 1")
    if max_labels < k:
        raise ValidationFailed.single("max_labels", f"must be at least k ({k})")
    if not 0.0 <= min_agreement <= 1.0:
        raise ValidationFailed.single("min_agreement", "must be between 0 and 1")
    if n_judgments < k:
        return True
    if n_judgments >= max_labels or prompt_agreement is None:
        return False
    return prompt_agreement < min_agreement

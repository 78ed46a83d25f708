"""The labeling settings of a project (SPEC §2), validated once, stored as JSONB."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.domain.errors import Problems
from app.domain.names import trimmed_pattern

DEFAULT_AXES = ["helpful", "honest", "harmless"]
MAX_AXIS = 40
AXIS_PATTERN = trimmed_pattern(MAX_AXIS)
"""``_axes``'s rule as a pattern: 1 to MAX_AXIS characters once stripped, no NUL."""


class AdaptiveOverlap(BaseModel):
    """Ask more labelers (up to ``max_labels``) while a prompt's agreement is below
    ``min_agreement``; unanimous prompts stop at k."""

    model_config = ConfigDict(extra="forbid")
    max_labels: int = Field(ge=2, le=20)
    min_agreement: float = Field(ge=0.0, le=1.0)


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels_per_prompt: int = Field(default=3, ge=1, le=20)
    allow_ties: bool = True
    allow_reject_all: bool = True
    rating_axes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AXES),
        max_length=8,
        json_schema_extra={
            "items": {"type": "string", "pattern": AXIS_PATTERN},
            "uniqueItems": True,
        },
    )
    require_rationale: bool = False
    lease_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    guidelines: str = Field(default="", max_length=100_000)
    gold_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    show_flags: bool = True
    adaptive: AdaptiveOverlap | None = None
    # How the labeler page shows prompts and completions: Markdown (sanitized, code
    # highlighted) or the raw text as written.
    render: Literal["markdown", "plain"] = "markdown"

    @field_validator("rating_axes")
    @classmethod
    def _axes(cls, axes: list[str]) -> list[str]:
        cleaned = [a.strip() for a in axes]
        if any(not a or len(a) > MAX_AXIS for a in cleaned):
            raise ValueError(f"each axis is a name of 1 to {MAX_AXIS} characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("axis names must be unique")
        return cleaned

    @model_validator(mode="after")
    def _adaptive_above_k(self) -> ProjectSettings:
        if self.adaptive and self.adaptive.max_labels < self.labels_per_prompt:
            raise ValueError("adaptive.max_labels must be at least labels_per_prompt")
        return self


def _whole(value: Any) -> Any:
    """``value`` with each whole float an int: JSON's 3.0 is the integer 3 (as JSON Schema's
    ``integer`` says), which strict validation would refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def parse_settings(
    data: dict[str, Any] | None, base: dict[str, Any] | None = None, *, strict: bool = False
) -> ProjectSettings:
    """Validate settings (merged over ``base``), raising ValidationFailed naming each field.
    ``strict``: JSON types only, as the API documents them (no ``"3"`` for 3, no ``1`` for
    true); a form's strings are converted."""
    merged = {**(base or {}), **(data or {})}
    try:
        return ProjectSettings.model_validate(_whole(merged) if strict else merged, strict=strict)
    except ValidationError as exc:
        problems = Problems()
        problems.add_located(exc.errors(), prefix="settings.")
        raise problems.error() from exc

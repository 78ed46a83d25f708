"""Export filters (SPEC §4): which prompts, judgments and pairs go into an export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.errors import Problems, ValidationFailed

TIES_DROP = "drop"
TIES_KEEP = "keep"
TIES_MODES = (TIES_DROP, TIES_KEEP)


@dataclass(frozen=True, slots=True)
class _Rule:
    """What one filter accepts, as JSON schema (the API documents exactly this) and the
    refusal's message."""

    schema: dict[str, Any]
    message: str


_RULES = {
    "min_judgments": _Rule({"type": "integer", "minimum": 0}, "must be a non-negative integer"),
    "min_agreement": _Rule(
        {"type": "number", "minimum": 0, "maximum": 1}, "must be a number between 0 and 1"
    ),
    "exclude_labelers": _Rule(
        {"type": "array", "items": {"type": "string"}}, "must be a list of labeler names"
    ),
    "include_gold": _Rule({"type": "boolean"}, "must be true or false"),
    "ties": _Rule({"enum": list(TIES_MODES)}, f"must be one of {', '.join(TIES_MODES)}"),
}


def _conforms(value: Any, schema: dict[str, Any]) -> bool:
    """Whether ``value`` is valid under ``schema`` (the subset ``_RULES`` uses)."""
    if "enum" in schema:
        return any(value == v and type(value) is type(v) for v in schema["enum"])
    kind = schema["type"]
    if kind == "array":
        items = schema["items"]
        return isinstance(value, list | tuple) and all(_conforms(v, items) for v in value)
    types = {"integer": int, "number": int | float, "boolean": bool, "string": str}[kind]
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 3.0 is the integer 3 (as JSON Schema's "integer" says)
    if not isinstance(value, types) or (isinstance(value, bool) and kind != "boolean"):
        return False
    low, high = schema.get("minimum"), schema.get("maximum")
    return (low is None or value >= low) and (high is None or value <= high)


def _problem(key: str, value: Any) -> str | None:
    rule = _RULES.get(key)
    if rule is None:
        return f"unknown filter; known: {', '.join(_RULES)}"
    return None if _conforms(value, rule.schema) else rule.message


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
            if (message := _problem(key, value)) is not None:
                problems.add(f"filters.{key}", message)
        problems.raise_if_any()
        values = dict(data)
        if "exclude_labelers" in values:
            values["exclude_labelers"] = tuple(sorted(set(values["exclude_labelers"])))
        if "min_agreement" in values:
            values["min_agreement"] = float(values["min_agreement"])
        if "min_judgments" in values:
            values["min_judgments"] = int(values["min_judgments"])
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

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of ``filters`` (every key optional: the rest are defaults), made
        from the rules ``from_dict`` checks with."""
        defaults = cls().to_dict()
        properties = {k: {**rule.schema, "default": defaults[k]} for k, rule in _RULES.items()}
        return {
            "type": "object",
            "title": "ExportFilters",
            "description": (cls.__doc__ or "").strip(),
            "properties": properties,
            "additionalProperties": False,
        }

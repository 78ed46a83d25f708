"""What a labeler sends: the judgment body (``JudgmentIn``) and its checks against the
project (``clean_judgment``). Leases are handed out by ``assignment``; judgments are
recorded by ``judgments``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.domain.errors import Problems, ValidationFailed
from app.domain.rankings import Tiers, validate_ranking, validate_ratings
from app.services.project_settings import ProjectSettings

MAX_RATIONALE = 5000
MAX_FLAGS = 20
MAX_FLAG_LENGTH = 64
MAX_DURATION_MS = 2**31 - 1


TIERS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "array", "minItems": 1, "items": {"type": "string"}},
}
RANKING_RULE = {
    "anyOf": [
        {
            "required": ["ranking"],
            "properties": {"ranking": TIERS_SCHEMA, "reject_all": {"const": False}},
        },
        {
            "required": ["reject_all"],
            "properties": {"reject_all": {"const": True}, "ranking": {"enum": [None, []]}},
        },
    ]
}
"""``_check_ranking``'s rule in the document: a ranking unless ``reject_all`` is true (then
none). That the tiers cover the assignment's completions depends on the data: not here."""


class JudgmentIn(BaseModel):
    """A judgment as submitted (SPEC §2); the service checks it against the project."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=RANKING_RULE)

    ranking: Any = Field(default=None, description="Tiers of completion ids, best first.")
    reject_all: StrictBool = False
    ratings: Any = Field(default=None, description="{completion_id: {axis: 1..5}}")
    flags: Any = Field(default=None, description="{completion_id: [flag, ...]}")
    rationale: str = Field(default="", max_length=MAX_RATIONALE)
    duration_ms: int | None = Field(default=None, ge=0, le=MAX_DURATION_MS)


@dataclass(frozen=True)
class CleanJudgment:
    """A judgment that passed every check of its project."""

    ranking: Tiers | None
    reject_all: bool
    ratings: dict[str, dict[str, int]]
    flags: dict[str, list[str]]
    rationale: str
    duration_ms: int | None

    def body_hash(self) -> str:
        canonical = {
            "ranking": [sorted(tier) for tier in self.ranking] if self.ranking else None,
            "reject_all": self.reject_all,
            "ratings": self.ratings,
            "flags": self.flags,
            "rationale": self.rationale,
        }
        raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


def _check_flags(flags: Any, completion_ids: list[str]) -> dict[str, list[str]]:
    if flags is None:
        return {}
    if not isinstance(flags, dict):
        raise ValidationFailed.single("flags", "must be an object mapping completion ids to lists")
    known, problems, out = set(completion_ids), Problems(), {}
    for cid, values in flags.items():
        field = f"flags.{cid}"
        if cid not in known:
            problems.add(field, "unknown completion id")
        elif (
            not isinstance(values, list)
            or len(values) > MAX_FLAGS
            or not all(isinstance(v, str) and 0 < len(v.strip()) <= MAX_FLAG_LENGTH for v in values)
        ):
            message = f"a list of at most {MAX_FLAGS} names of 1 to {MAX_FLAG_LENGTH} characters"
            problems.add(field, message)
        elif values:
            out[cid] = sorted({v.strip() for v in values})
    problems.raise_if_any()
    return out


def _check_ranking(body: JudgmentIn, ids: list[str], settings: ProjectSettings) -> Tiers | None:
    if body.reject_all:
        if not settings.allow_reject_all:
            raise ValidationFailed.single(
                "reject_all", "this project does not allow rejecting all completions"
            )
        if body.ranking not in (None, []):
            raise ValidationFailed.single("ranking", "leave it out when reject_all is true")
        return None
    if body.ranking is None:
        raise ValidationFailed.single("ranking", "required unless reject_all is true")
    return validate_ranking(body.ranking, ids, allow_ties=settings.allow_ties)


def clean_judgment(
    body: JudgmentIn, completion_ids: list[str], settings: ProjectSettings
) -> CleanJudgment:
    """Check a judgment against the prompt's completions and the project's settings.

    Raises one ValidationFailed listing every problem, each detail naming its field."""
    problems = Problems()
    ranking = ratings = flags = None
    with problems.collecting():
        ranking = _check_ranking(body, completion_ids, settings)
    with problems.collecting():
        ratings = validate_ratings(body.ratings, completion_ids, settings.rating_axes)
    with problems.collecting():
        flags = _check_flags(body.flags, completion_ids)
    if settings.require_rationale and not body.rationale.strip():
        problems.add("rationale", "required in this project")
    problems.raise_if_any()
    return CleanJudgment(
        ranking, body.reject_all, ratings or {}, flags or {}, body.rationale, body.duration_ms
    )

"""Rankings: tiers of completion ids, best first, and the pairs they imply (SPEC §2, §4).

A ranking is a list of tiers; completions in one tier are tied.
``[["b"], ["a", "c"]]`` means b > a = c. Validated rankings are tuples of tuples
so they can be hashed, compared and stored as given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.domain.errors import Problems

Tier = tuple[str, ...]
Tiers = tuple[Tier, ...]

RATING_MIN = 1
RATING_MAX = 5


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _shape_problems(tiers: Any) -> list[str]:
    """Problems with the structure: a non-empty list of non-empty lists of strings."""
    if not _is_list(tiers):
        return [f"must be a list of tiers (lists of completion ids), got {type(tiers).__name__}"]
    if not tiers:
        return ["must not be empty: rank every completion"]
    problems = []
    for number, tier in enumerate(tiers, start=1):
        if not _is_list(tier):
            problems.append(f"tier {number} must be a list of completion ids")
        elif not tier:
            problems.append(f"tier {number} is empty")
        else:
            problems.extend(
                f"tier {number}, item {pos}: a completion id must be a string, "
                f"got {type(item).__name__}"
                for pos, item in enumerate(tier, start=1)
                if not isinstance(item, str)
            )
    return problems


def _content_problems(
    tiers: Sequence[Sequence[str]], known: Sequence[str], allow_ties: bool
) -> list[str]:
    """Problems with the ids: unknown, repeated, missing, or tied when ties are off."""
    known_set = set(known)
    seen: set[str] = set()
    problems = []
    for number, tier in enumerate(tiers, start=1):
        if not allow_ties and len(tier) > 1:
            problems.append(f"tier {number} ties {len(tier)} completions; ties are not allowed")
        for cid in tier:
            if cid not in known_set:
                problems.append(f"unknown completion id {cid!r} in tier {number}")
            elif cid in seen:
                problems.append(f"completion {cid!r} appears more than once")
            seen.add(cid)
    missing = [cid for cid in known if cid not in seen]
    if missing:
        problems.append("missing completion id(s): " + ", ".join(repr(c) for c in missing))
    return problems


def validate_ranking(tiers: Any, completion_ids: Sequence[str], *, allow_ties: bool) -> Tiers:
    """Check that ``tiers`` ranks every completion of a prompt exactly once.

    Returns the ranking as a tuple of tuples. Raises ValidationFailed (field
    ``"ranking"``) listing every problem found: wrong shape, empty tier, unknown,
    repeated or missing id, or a tie when the project does not allow ties.
    """
    messages = _shape_problems(tiers)
    if not messages:
        messages = _content_problems(tiers, completion_ids, allow_ties)
    problems = Problems()
    for message in messages:
        problems.add("ranking", message)
    problems.raise_if_any()
    return tuple(tuple(tier) for tier in tiers)


def tier_index(tiers: Iterable[Iterable[str]]) -> dict[str, int]:
    """Map each completion id to the 0-based index of its tier (0 = best)."""
    return {cid: number for number, tier in enumerate(tiers) for cid in tier}


def pairwise_outcomes(tiers: Iterable[Iterable[str]]) -> dict[tuple[str, str], int]:
    """Outcome of every unordered pair, keyed ``(i, j)`` with ``i < j`` in string order.

    +1: i is ranked above j; -1: j above i; 0: tied.
    """
    position = tier_index(tiers)
    ids = sorted(position)
    outcomes: dict[tuple[str, str], int] = {}
    for a, first in enumerate(ids):
        first_tier = position[first]
        for second in ids[a + 1 :]:
            second_tier = position[second]
            outcomes[(first, second)] = (first_tier < second_tier) - (first_tier > second_tier)
    return outcomes


def ranked_pairs(tiers: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """Every (winner, loser) pair the ranking implies; tied completions give none.

    Order: by the winner's tier, then the loser's tier, then position within a tier.
    A ranking of K completions without ties gives K(K-1)/2 pairs.
    """
    pairs = []
    for number, tier in enumerate(tiers):
        lower = [cid for below in tiers[number + 1 :] for cid in below]
        pairs.extend((winner, loser) for winner in tier for loser in lower)
    return pairs


def tied_pairs(tiers: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """Every pair of completions sharing a tier, in tier order then position order."""
    return [
        (tier[a], tier[b])
        for tier in tiers
        for a in range(len(tier))
        for b in range(a + 1, len(tier))
    ]


def _rating_problems(problems: Problems, cid: str, scores: Any, axes: Sequence[str]) -> None:
    """The problems in the ratings of one completion."""
    if not isinstance(scores, Mapping):
        problems.add(f"ratings.{cid}", "must be an object mapping rating axes to 1..5")
        return
    for axis, value in scores.items():
        field = f"ratings.{cid}.{axis}"
        if axis not in axes:
            problems.add(field, f"unknown rating axis; known axes: {', '.join(axes)}")
        elif isinstance(value, bool) or not isinstance(value, int):
            problems.add(field, f"must be an integer {RATING_MIN}..{RATING_MAX}")
        elif not RATING_MIN <= value <= RATING_MAX:
            problems.add(field, f"must be between {RATING_MIN} and {RATING_MAX}, got {value}")


def validate_ratings(
    ratings: Any, completion_ids: Sequence[str], axes: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Check ``{completion_id: {axis: 1..5}}``; ``None`` means no ratings.

    Ratings are optional and may cover only some completions and axes. Raises
    ValidationFailed with one detail per problem, each naming its field
    (``ratings``, ``ratings.b`` or ``ratings.b.helpful``).
    """
    if ratings is None:
        return {}
    problems = Problems()
    if not isinstance(ratings, Mapping):
        problems.add("ratings", "must be an object mapping completion ids to ratings")
        problems.raise_if_any()
    known = set(completion_ids)
    for cid, scores in ratings.items():
        if cid not in known:
            problems.add(f"ratings.{cid}", "unknown completion id")
        else:
            _rating_problems(problems, cid, scores, axes)
    problems.raise_if_any()
    return {cid: dict(scores) for cid, scores in ratings.items()}

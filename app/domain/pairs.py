"""From the judgments of one prompt to export rows (SPEC §4, §5).

Row keys, in this order: ``prompt, chosen, rejected, margin, prompt_id, chosen_id,
rejected_id, votes_for, votes_against, votes_tie, n_judgments, agreement``; then
``tie`` (every row, only when ``ties="keep"``) and ``labeler`` (strategy ``all``).

Definitions (recorded in the manifest through :func:`manifest_method_description`):

* ``n_judgments``: judgments of the prompt after ``exclude_labelers``, including
  ``reject_all`` ones. ``reject_all`` judgments rank nothing and cast no pair votes.
* ``votes_for`` / ``votes_against`` / ``votes_tie``: ranking judgments putting
  ``chosen`` above ``rejected`` / below it / in the same tier. Their sum ``n`` is
  the number of ranking judgments.
* ``agreement = votes_for / n`` (SPEC §4), on every row, tie rows included.
* ``margin = votes_for / n`` (the vote share of the chosen completion, as in the SPEC §5
  example: 2 of 3 judgments → 0.67) for preference rows, 0 for tie rows. It lies in
  [0, 1] and grows with how many labelers back the pair; TRL's RewardTrainer uses it
  as the Bradley–Terry margin.

Strategies:

* ``consensus``: every pair of the consensus order (see ``consensus.py``), chosen =
  the completion ranked higher. It is a preference row when ``votes_for >
  votes_against``, a tie row when they are equal, and left out when the head-to-head
  votes contradict the consensus order (possible with three or more judgments).
* ``best_vs_rest`` / ``best_vs_worst``: the consensus rows whose chosen is the top
  of the consensus order, against every other completion / against the last one.
* ``all``: each ranking judgment's own pairs, one row per labeler and pair, with
  the vote counts of all judgments for that ordered pair; judgments sorted by labeler.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.domain.consensus import BRADLEY_TERRY, METHODS, Consensus, consensus
from app.domain.errors import ValidationFailed
from app.domain.export_filters import TIES_KEEP, ExportFilters
from app.domain.jsonl import FLOAT_DIGITS, encode_json, float_json
from app.domain.rankings import ranked_pairs, tied_pairs

CONSENSUS = "consensus"
ALL = "all"
BEST_VS_REST = "best_vs_rest"
BEST_VS_WORST = "best_vs_worst"
STRATEGIES = (CONSENSUS, ALL, BEST_VS_REST, BEST_VS_WORST)

ROW_KEYS = (
    "prompt",
    "chosen",
    "rejected",
    "margin",
    "prompt_id",
    "chosen_id",
    "rejected_id",
    "votes_for",
    "votes_against",
    "votes_tie",
    "n_judgments",
    "agreement",
)

MARGIN_DEFINITION = (
    "votes_for / n_ranking_judgments (the chosen completion's vote share) for preference "
    "rows, 0 for tie rows"
)
AGREEMENT_DEFINITION = "votes_for / (votes_for + votes_against + votes_tie)"
REJECT_ALL_RULE = "reject_all judgments count in n_judgments and cast no pair votes"

Tiers = Sequence[Sequence[str]]


@dataclass(frozen=True, slots=True)
class JudgmentData:
    """One judgment as the export sees it.

    ``tiers`` is None for a ``reject_all`` judgment; a judgment with ``reject_all`` set
    casts no votes even if it carries tiers.
    """

    labeler: str
    tiers: Tiers | None
    reject_all: bool = False


@dataclass(frozen=True, slots=True)
class PromptData:
    """One prompt with its completions (id -> text, in display order) and judgments."""

    prompt_id: str
    prompt: str | list[dict[str, Any]]
    completions: dict[str, str]
    gold: Tiers | None = None
    judgments: list[JudgmentData] = field(default_factory=list)


# A candidate row: (chosen, rejected, is a tie, labeler or None); chosen and
# rejected index Consensus.completion_ids.
_Candidate = tuple[int, int, bool, str | None]
# A row in numbers: candidate fields, votes_for, votes_against, then _row_numbers().
_Numbers = tuple[int, float, float, str, str]
_Record = tuple[int, int, bool, str | None, int, int, _Numbers]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one prompt's rows are made of, before they take a shape."""

    ids: tuple[str, ...]
    n_judgments: int
    keep_ties: bool
    records: list[_Record]


def _consensus_candidates(
    cons: Consensus, best_only: bool, worst_only: bool
) -> Iterator[_Candidate]:
    above, order = cons.above, cons.ranked
    k = len(order)
    for a in range(1 if best_only else k):
        chosen = order[a]
        for rejected in order[k - 1 if worst_only else a + 1 :]:
            votes_for, votes_against = above[chosen * k + rejected], above[rejected * k + chosen]
            if votes_for >= votes_against:
                yield chosen, rejected, votes_for == votes_against, None


def _judgment_candidates(
    cons: Consensus, judgments: Sequence[JudgmentData], keep_ties: bool
) -> Iterator[_Candidate]:
    index = cons.index
    for judgment in sorted(judgments, key=lambda j: j.labeler):
        tiers, labeler = judgment.tiers, judgment.labeler
        if tiers is None:
            continue
        for chosen, rejected in ranked_pairs(tiers):
            yield index[chosen], index[rejected], False, labeler
        if keep_ties:
            for first, second in tied_pairs(tiers):
                yield index[first], index[second], True, labeler


def _candidates(
    strategy: str, cons: Consensus, judgments: Sequence[JudgmentData], keep_ties: bool
) -> Iterator[_Candidate]:
    if strategy == ALL:
        return _judgment_candidates(cons, judgments, keep_ties)
    return _consensus_candidates(
        cons, best_only=strategy != CONSENSUS, worst_only=strategy == BEST_VS_WORST
    )


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValidationFailed.single(name, f"must be one of {', '.join(allowed)}, got {value!r}")


def _ranking_judgments(
    prompt: PromptData, filters: ExportFilters
) -> tuple[list[JudgmentData], int] | None:
    """Judgments left after the prompt-level filters, and n_judgments; None to skip the prompt."""
    if prompt.gold is not None and not filters.include_gold:
        return None
    excluded = filters.exclude_labelers
    kept = (
        [j for j in prompt.judgments if j.labeler not in excluded] if excluded else prompt.judgments
    )
    if len(kept) < filters.min_judgments:
        return None
    ranking = [j for j in kept if not j.reject_all and j.tiers is not None]
    return (ranking, len(kept)) if ranking else None


@lru_cache(maxsize=4096)
def _row_numbers(votes_for: int, votes_against: int, tie: bool, n: int) -> _Numbers:
    """votes_tie, margin, agreement, and the JSON of margin and agreement (cached: rows of
    a project repeat the same few vote counts)."""
    agreement = round(votes_for / n, FLOAT_DIGITS)
    margin = 0.0 if tie else agreement
    return (
        n - votes_for - votes_against,
        margin,
        agreement,
        float_json(margin),
        float_json(agreement),
    )


def plan_prompt(
    prompt: PromptData, strategy: str, filters: ExportFilters | None, method: str
) -> Plan | None:
    """Select, combine and filter one prompt's pairs; None when the prompt gives no rows."""
    _check_choice("strategy", strategy, STRATEGIES)
    _check_choice("method", method, METHODS)
    filters = filters or ExportFilters()
    selected = _ranking_judgments(prompt, filters)
    if selected is None:
        return None
    judgments, n_judgments = selected
    cons = consensus([j.tiers for j in judgments], list(prompt.completions), method)
    above, n = cons.above, cons.n_rankings
    k = len(cons.completion_ids)
    keep_ties = filters.ties == TIES_KEEP
    min_agreement = filters.min_agreement
    records = []
    for chosen, rejected, tie, labeler in _candidates(strategy, cons, judgments, keep_ties):
        votes_for, votes_against = above[chosen * k + rejected], above[rejected * k + chosen]
        if (tie and not keep_ties) or votes_for / n < min_agreement:
            continue
        numbers = _row_numbers(votes_for, votes_against, tie, n)
        records.append((chosen, rejected, tie, labeler, votes_for, votes_against, numbers))
    return Plan(cons.completion_ids, n_judgments, keep_ties, records)


def _completion_values(prompt: PromptData, ids: Sequence[str]) -> list[Any]:
    """What goes in ``chosen`` / ``rejected``, by index: the text, or TRL's message list."""
    if isinstance(prompt.prompt, list):
        return [[{"role": "assistant", "content": prompt.completions[cid]}] for cid in ids]
    return [prompt.completions[cid] for cid in ids]


def pair_rows(
    prompt: PromptData,
    strategy: str = CONSENSUS,
    filters: ExportFilters | None = None,
    method: str = BRADLEY_TERRY,
) -> list[dict[str, Any]]:
    """Export rows of one prompt as dicts, in a deterministic order (see the module doc)."""
    plan = plan_prompt(prompt, strategy, filters, method)
    if plan is None:
        return []
    ids, values = plan.ids, _completion_values(prompt, plan.ids)
    rows = []
    for chosen, rejected, tie, labeler, v_for, v_against, numbers in plan.records:
        v_tie, margin, agreement = numbers[:3]
        row = dict(
            zip(
                ROW_KEYS,
                (
                    prompt.prompt,
                    values[chosen],
                    values[rejected],
                    margin,
                    prompt.prompt_id,
                    ids[chosen],
                    ids[rejected],
                    v_for,
                    v_against,
                    v_tie,
                    plan.n_judgments,
                    agreement,
                ),
                strict=True,
            )
        )
        if plan.keep_ties:
            row["tie"] = tie
        if labeler is not None:
            row["labeler"] = labeler
        rows.append(row)
    return rows


# One row as a %-template (the fastest string fill in CPython); the last slot takes
# the optional "tie" and "labeler" members. Keys never contain "%".
_LINE = "{" + ",".join(encode_json(key) + ":%s" for key in ROW_KEYS) + "%s}\n"


def pair_lines(
    prompt: PromptData,
    strategy: str = CONSENSUS,
    filters: ExportFilters | None = None,
    method: str = BRADLEY_TERRY,
) -> bytes:
    """The rows of :func:`pair_rows` as canonical JSON lines, the export's hot path.

    Byte for byte ``serialize_rows(pair_rows(...))``, without building the dicts: the
    prompt and each completion are JSON-encoded once, every line is one template fill.
    """
    plan = plan_prompt(prompt, strategy, filters, method)
    if plan is None:
        return b""
    values = [encode_json(v) for v in _completion_values(prompt, plan.ids)]
    text = plan_text(plan, encode_json(prompt.prompt), encode_json(prompt.prompt_id), values)
    return text.encode("utf-8")


def plan_text(plan: Plan, text: str, prompt_id: str, values: Sequence[str]) -> str:
    """The lines of a plan, given the JSON of the prompt, of its id and of each completion
    value (in ``plan.ids`` order)."""
    ids = [encode_json(cid) for cid in plan.ids]
    n_judgments = plan.n_judgments
    extras = {True: ',"tie":true', False: ',"tie":false'} if plan.keep_ties else {}
    labelers: dict[str, str] = {}
    lines = []
    for chosen, rejected, tie, labeler, v_for, v_against, numbers in plan.records:
        v_tie, _, _, margin, agreement = numbers
        extra = extras.get(tie, "")
        if labeler is not None:
            if labeler not in labelers:
                labelers[labeler] = ',"labeler":' + encode_json(labeler)
            extra += labelers[labeler]
        lines.append(
            _LINE
            % (
                text,
                values[chosen],
                values[rejected],
                margin,
                prompt_id,
                ids[chosen],
                ids[rejected],
                v_for,
                v_against,
                v_tie,
                n_judgments,
                agreement,
                extra,
            )
        )
    return "".join(lines)


def manifest_method_description(strategy: str, method: str = BRADLEY_TERRY) -> dict[str, str]:
    """What the manifest records about how rows were made."""
    _check_choice("strategy", strategy, STRATEGIES)
    _check_choice("method", method, METHODS)
    prior = (
        "one virtual tied game per completion against a pseudo-opponent of strength 1; "
        "maximum likelihood by Newton–Raphson on log-strengths"
        if method == BRADLEY_TERRY
        else "none"
    )
    return {
        "strategy": strategy,
        "consensus": method,
        "consensus_prior": prior,
        "consensus_order": (
            "best first by score (on complete rankings Bradley–Terry and Borda give the "
            "same order); equal scores broken by completion id"
        ),
        "margin": MARGIN_DEFINITION,
        "agreement": AGREEMENT_DEFINITION,
        "reject_all": REJECT_ALL_RULE,
        "float_digits": str(FLOAT_DIGITS),
    }

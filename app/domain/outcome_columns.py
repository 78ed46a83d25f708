"""An :class:`~app.domain.outcomes.OutcomeTable` built from columns, without a Python
record per judgment.

The columns are what one query returns, one entry per judgment, grouped by prompt
(prompts in id order, as :meth:`OutcomeTable.from_records` sorts them). Rankings,
display orders and gold rankings are JSON texts: each distinct text is parsed once,
every judgment becomes a small integer code, and the table's arrays are gathered from
per-code lookup tables with numpy. The result equals ``OutcomeTable.from_records`` of
the same judgments (same arrays, same errors for inconsistent rankings; tests compare
the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.domain.agreement import InvalidAgreementData
from app.domain.json_cache import JsonCache, Tiers
from app.domain.outcomes import NO_GOLD, OutcomeTable, RankBlock


@dataclass(frozen=True)
class JudgmentColumns:
    """One entry per judgment, grouped by prompt with prompts in id order.

    ``rankings``/``orders``/``golds`` are JSON texts (None when absent); a judgment with
    ``reject_all`` ranks nothing whatever its ranking; ``durations`` in ms or None."""

    prompt_ids: Sequence[str]
    labelers: Sequence[str]
    rankings: Sequence[str | None]
    rejects: Sequence[bool]
    orders: Sequence[str | None]
    durations: Sequence[int | None]
    golds: Sequence[str | None]


def _codes(texts: Sequence[str | None]) -> tuple[np.ndarray, list[str | None]]:
    """Each text's index among the distinct texts (first-seen order), and those texts."""
    distinct = list(dict.fromkeys(texts))
    index = {text: i for i, text in enumerate(distinct)}
    return np.fromiter(map(index.__getitem__, texts), np.int64, count=len(texts)), distinct


@dataclass
class _Rankings:
    """Per distinct ranking: its completion ids (sorted), tier per id and whether it names
    each of them once (an empty or repeating ranking never is consistent), parsed once."""

    ids: list[tuple[str, ...]]
    vectors: list[tuple[int, ...]]
    tiers: list[Tiers | None]
    valid: np.ndarray

    @classmethod
    def parse(cls, texts: list[str | None], cache: JsonCache) -> _Rankings:
        ids, vectors, parsed, valid = [], [], [], []
        for text in texts:
            tiers = cache.tiers(text)
            flat = sorted(cid for tier in tiers or () for cid in tier)
            tier_of = {cid: n for n, tier in enumerate(tiers or ()) for cid in tier}
            ok = len(tier_of) == len(flat) > 0
            ids.append(tuple(flat))
            vectors.append(tuple(tier_of[cid] for cid in flat) if ok else ())
            parsed.append(tiers)
            valid.append(ok)
        return cls(ids, vectors, parsed, np.asarray(valid, dtype=bool))


def _prompt_starts(prompt_ids: Sequence[str]) -> np.ndarray:
    """Where each prompt's judgments begin; ValueError unless prompts come in id order."""
    n = len(prompt_ids)
    changes = [i for i in range(1, n) if prompt_ids[i] != prompt_ids[i - 1]]
    starts = [0, *changes] if n else []
    firsts = [prompt_ids[s] for s in starts]
    if any(a >= b for a, b in zip(firsts, firsts[1:], strict=False)):
        raise ValueError("judgment columns must be grouped by prompt, prompts in id order")
    return np.asarray(starts, dtype=np.int64)


@dataclass(frozen=True)
class CodedJudgments:
    """The same judgments as small integer codes into their distinct values.

    ``judgment_prompt``: per judgment, its prompt's index in ``prompt_ids`` (prompts in
    id order, judgments grouped by prompt: non-decreasing); ``judgment_labeler``,
    ``ranking_code`` and ``order_code``: per judgment, indexes into ``labelers`` (distinct
    names, any order), ``rankings`` and ``orders`` (distinct JSON texts, None allowed);
    ``gold_code``: per prompt, an index into ``golds``; ``seconds``: NaN when unknown."""

    prompt_ids: Sequence[str]
    judgment_prompt: np.ndarray
    labelers: Sequence[str]
    judgment_labeler: np.ndarray
    rankings: Sequence[str | None]
    ranking_code: np.ndarray
    rejects: np.ndarray
    orders: Sequence[str | None]
    order_code: np.ndarray
    seconds: np.ndarray
    golds: Sequence[str | None]
    gold_code: np.ndarray


def table_from_columns(columns: JudgmentColumns) -> OutcomeTable:
    """The OutcomeTable of these judgments; raises InvalidAgreementData when a prompt's
    rankings (or its gold ranking) cover different completions."""
    n = len(columns.prompt_ids)
    starts = _prompt_starts(columns.prompt_ids)
    labeler_code, labelers = _codes(columns.labelers)
    ranking_code, rankings = _codes(columns.rankings)
    order_code, orders = _codes(columns.orders)
    gold_code, golds = _codes([columns.golds[s] for s in starts])
    coded = CodedJudgments(
        prompt_ids=[columns.prompt_ids[s] for s in starts],
        judgment_prompt=np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n])),
        labelers=labelers,
        judgment_labeler=labeler_code,
        rankings=rankings,
        ranking_code=ranking_code,
        rejects=np.asarray(columns.rejects, dtype=bool) if n else np.zeros(0, bool),
        orders=orders,
        order_code=order_code,
        seconds=np.asarray(columns.durations, dtype=float) / 1000,  # None becomes NaN
        golds=golds,
        gold_code=gold_code,
    )
    return table_from_codes(coded)


def _labeler_index(names: Sequence[str], code: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct names sorted, and each judgment's index among them."""
    labelers = sorted(set(names))
    index = {name: i for i, name in enumerate(labelers)}
    remap = np.asarray([index[name] for name in names], dtype=np.int64)
    return labelers, remap[code] if len(code) else np.zeros(0, np.int64)


def table_from_codes(coded: CodedJudgments) -> OutcomeTable:
    """The OutcomeTable of coded judgments (see :func:`table_from_columns`)."""
    judgment_prompt = coded.judgment_prompt
    cache = JsonCache()
    parsed = _Rankings.parse(list(coded.rankings), cache)
    code = coded.ranking_code
    is_ranking = ~coded.rejects & _named(parsed)[code] if len(code) else np.zeros(0, bool)
    code = np.where(is_ranking, code, -1)
    gold_code = coded.gold_code
    golds = _Rankings.parse(list(coded.golds), cache)
    sets = _Sets.of(parsed, code, judgment_prompt, golds, gold_code)
    _check(list(coded.prompt_ids), sets, parsed, code, judgment_prompt, golds, gold_code)
    k = sets.sizes()
    labelers, judgment_labeler = _labeler_index(coded.labelers, coded.judgment_labeler)
    orders = (coded.order_code, list(coded.orders))
    return OutcomeTable(
        prompt_ids=list(coded.prompt_ids),
        labelers=labelers,
        n_completions=k,
        unit_offset=np.concatenate(([0], np.cumsum(k * (k - 1) // 2))).astype(np.int64),
        unit_gold=_unit_gold(golds, gold_code, k),
        judgment_labeler=judgment_labeler,
        judgment_prompt=judgment_prompt,
        first_shown_on_top=_first_on_top(parsed, code, orders, cache),
        seconds=coded.seconds,
        blocks=_blocks(parsed, code, judgment_prompt, k),
    )


@dataclass(frozen=True)
class _Sets:
    """Each prompt's completion ids as an index into ``ids`` (distinct sorted id tuples,
    the empty one first): from its first ranking, else its gold, else empty; and the
    index of each distinct ranking's and gold ranking's ids."""

    ids: list[tuple[str, ...]]
    prompt: np.ndarray
    ranking: np.ndarray
    gold: np.ndarray

    @classmethod
    def of(
        cls,
        parsed: _Rankings,
        code: np.ndarray,
        judgment_prompt: np.ndarray,
        golds: _Rankings,
        gold_code: np.ndarray,
    ) -> _Sets:
        codes, ids = _codes([(), *parsed.ids, *golds.ids])
        ranking = np.r_[codes[1 : 1 + len(parsed.ids)], 0]  # the last one: no ranking
        gold = codes[1 + len(parsed.ids) :]
        first = np.full(len(gold_code), -1, dtype=np.int64)
        ranked = np.flatnonzero(code >= 0)[::-1]  # reversed: the first one is written last
        first[judgment_prompt[ranked]] = code[ranked]
        from_gold = np.where(_named(golds)[gold_code], gold[gold_code], 0)
        prompt = np.where(first >= 0, ranking[first], from_gold)
        return cls(ids, prompt, ranking[:-1], gold)

    def sizes(self) -> np.ndarray:
        """The number of completions of each prompt."""
        return np.asarray([len(i) for i in self.ids], dtype=np.int64)[self.prompt]


def _named(rankings: _Rankings) -> np.ndarray:
    """Whether each distinct text is a ranking (not None)."""
    return np.asarray([t is not None for t in rankings.tiers], bool)


def _check(
    prompt_ids: list[str],
    sets: _Sets,
    parsed: _Rankings,
    code: np.ndarray,
    judgment_prompt: np.ndarray,
    golds: _Rankings,
    gold_code: np.ndarray,
) -> None:
    """Every ranking and gold ranking of a prompt covers its completions exactly once."""
    ranked = np.flatnonzero(code >= 0)
    ranking, prompt = code[ranked], judgment_prompt[ranked]
    differs = (sets.ranking[ranking] != sets.prompt[prompt]) | ~parsed.valid[ranking]
    bad = prompt[differs].tolist()
    has_gold = _named(golds)[gold_code]
    gold_differs = (sets.gold[gold_code] != sets.prompt) | ~golds.valid[gold_code]
    bad += np.flatnonzero(has_gold & gold_differs).tolist()
    if bad:
        raise InvalidAgreementData(
            f"prompt {prompt_ids[min(bad)]!r}: rankings cover different completions"
        )


def _unit_gold(golds: _Rankings, gold_code: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per unit, the gold ranking's outcome (NO_GOLD without one); each distinct gold
    ranking's outcomes are computed once."""
    pairs = k * (k - 1) // 2
    unit_gold = np.full(int(pairs.sum()), NO_GOLD, dtype=np.int8)
    offsets = np.cumsum(pairs) - pairs
    gold_prompts = np.flatnonzero(_named(golds)[gold_code])
    for size in np.unique(k[gold_prompts]).tolist():
        prompts = gold_prompts[k[gold_prompts] == size]
        i, j = np.triu_indices(size, 1)
        table = np.zeros((len(golds.vectors), len(i)), dtype=np.int8)
        for c, vector in enumerate(golds.vectors):
            if len(vector) == size:
                table[c] = np.sign(np.asarray(vector)[j] - np.asarray(vector)[i])
        units = offsets[prompts][:, None] + np.arange(len(i))
        unit_gold[units.ravel()] = table[gold_code[prompts]].ravel()
    return unit_gold


def _first_on_top(
    parsed: _Rankings,
    code: np.ndarray,
    orders: tuple[np.ndarray, list[str | None]],
    cache: JsonCache,
) -> np.ndarray:
    """1 when the first completion shown was ranked in the top tier, 0 if not, -1 unknown."""
    order_code, order_texts = orders
    firsts = [(shown or (None,))[0] for shown in map(cache.order, order_texts)]
    pair, inverse = np.unique(code * len(order_texts) + order_code, return_inverse=True)
    values = []
    for key in pair.tolist():
        ranking, shown = divmod(key, len(order_texts))
        first = firsts[shown]
        tiers = parsed.tiers[ranking] if ranking >= 0 else None
        values.append(-1 if tiers is None or first is None else int(first in tiers[0]))
    return np.asarray(values, dtype=np.int8)[inverse.reshape(-1)]


def _blocks(
    parsed: _Rankings, code: np.ndarray, judgment_prompt: np.ndarray, k: np.ndarray
) -> dict[int, RankBlock]:
    ranked = np.flatnonzero(code >= 0)
    k_of = k[judgment_prompt[ranked]]
    blocks = {}
    for size in sorted(set(k_of.tolist())):
        if size < 2:
            continue
        rows = ranked[k_of == size]
        table = np.zeros((len(parsed.vectors), size), dtype=np.int16)
        for c, vector in enumerate(parsed.vectors):
            if len(vector) == size:
                table[c] = vector
        blocks[size] = RankBlock(size, rows, judgment_prompt[rows], table[code[rows]])
    return blocks

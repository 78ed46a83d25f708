"""The export's hot path for whole projects: the rows of a prompt computed once per
*shape* and filled by one string operation per prompt.

A prompt's rows (which pairs, their votes and numbers, their order) depend only on its
completion ids and the judgments left after the filters: for the consensus strategies
on the multiset of rankings and how many judgments there are, for ``all`` on each
labeler's own ranking. A project repeats a few thousand such shapes over hundreds of
thousands of prompts. :class:`PairBlocks` plans each shape once with
:func:`app.domain.pairs.pair_lines`' own planner and keeps its lines as a ``%``
template whose slots take the prompt, the prompt id and the completions; every other
prompt of that shape costs the JSON encoding of its own texts and one template fill.
The bytes are those of :func:`~app.domain.pairs.pair_lines` (tests pin them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from app.domain.consensus import BRADLEY_TERRY
from app.domain.export_filters import ExportFilters
from app.domain.json_cache import JsonCache
from app.domain.jsonl import encode_json, encode_str
from app.domain.pairs import ALL, JudgmentData, PromptData, plan_prompt, plan_text

MAX_SHAPES = 200_000  # the cache is emptied when it grows past this (memory stays bounded)

# Placeholders in a planned block: NUL never appears raw in JSON text.
_TEXT, _PROMPT_ID = "\x00\x01", "\x00\x02"
_SLOT = re.compile("\x00(.)", re.DOTALL)


def _value_slot(i: int) -> str:
    return "\x00" + chr(0x100 + i)


def _slot_index(tag: str) -> int:
    """Index into ``(text, prompt_id, value_0, value_1, ...)`` of a placeholder tag."""
    return ord(tag) - 1 if ord(tag) < 0x100 else ord(tag) - 0x100 + 2


def _getter(slots: list[int]) -> Callable[[Sequence[str]], tuple[str, ...]]:
    return itemgetter(*slots) if len(slots) > 1 else (lambda parts: (parts[slots[0]],))


class Shape:
    """A planned block: ``template % fill(parts)`` with parts ``(text, prompt_id, *values)``
    where values are the completions in id order, taken from fetched positions ``perm``;
    ``template % fetched(parts)`` takes the values in fetched (position) order instead."""

    __slots__ = ("fetched", "fill", "perm", "rows", "template")

    def __init__(self, block: str, perm: tuple[int, ...], rows: int) -> None:
        pieces = _SLOT.split(block)
        self.template = "%s".join(p.replace("%", "%%") for p in pieces[::2])
        slots = [_slot_index(tag) for tag in pieces[1::2]]
        self.fill = _getter(slots)
        self.fetched = _getter([s if s < 2 else 2 + perm[s - 2] for s in slots])
        self.perm, self.rows = perm, rows


EMPTY = Shape("", (), 0)


def ranked_texts(rankings: Sequence[str | None], rejects: Sequence[bool]) -> list[str]:
    """The ranking JSON texts of the judgments that rank (not ``reject_all``), sorted: what
    identifies a prompt's consensus and its agreement statistics."""
    return sorted([r for r, no in zip(rankings, rejects, strict=True) if r and not no])


class PairBlocks:
    """Export lines of the prompts of one export (one strategy and filter set)."""

    def __init__(self, strategy: str, filters: ExportFilters, method: str = BRADLEY_TERRY) -> None:
        plan_prompt(PromptData("", "", {}), strategy, filters, method)  # validates the choices
        self.strategy, self.filters, self.method = strategy, filters, method
        self.excluded = frozenset(filters.exclude_labelers)
        self.by_labeler = strategy == ALL
        self.cache = JsonCache()
        self.shapes: dict[tuple[Any, ...], Shape] = {}
        self.kept = 0  # judgments of the last prompt left after exclude_labelers

    def lines(
        self,
        prompt_id: str,
        prompt: str | list[dict[str, Any]],
        ids: Sequence[str],
        texts: Sequence[str],
        judgments: tuple[Sequence[Any], Sequence[str | None], Sequence[bool]],
        has_gold: bool,
        ranked: Sequence[str] | None = None,
    ) -> tuple[str, int]:
        """The prompt's lines and their count. ``judgments`` = (labelers, ranking JSON
        texts, reject_all flags), aligned; ids and texts by completion position. Labelers
        must be names for strategy ``all`` and with ``exclude_labelers``; elsewhere any
        key serves (only their number counts). ``ranked``: :func:`ranked_texts` of the
        judgments, when the caller has it already."""
        names, rankings, rejects = judgments
        shape = self.shape(ids, names, rankings, rejects, has_gold, ranked)
        if not shape.rows:
            return "", 0
        if type(prompt) is str:
            values = [encode_str(texts[i]) for i in shape.perm]
            parts = (encode_str(prompt), encode_str(prompt_id), *values)
        elif isinstance(prompt, list):  # chat: TRL's conversational values
            chat = [encode_json([{"role": "assistant", "content": texts[i]}]) for i in shape.perm]
            parts = (encode_json(prompt), encode_str(prompt_id), *chat)
        else:
            values = [encode_json(texts[i]) for i in shape.perm]
            parts = (encode_json(prompt), encode_str(prompt_id), *values)
        return shape.template % shape.fill(parts), shape.rows

    def shape(
        self,
        ids: Sequence[str],
        names: Sequence[Any],
        rankings: Sequence[str | None],
        rejects: Sequence[bool],
        has_gold: bool,
        ranked: Sequence[str] | None = None,
    ) -> Shape:
        """The planned block of a prompt's rows (:data:`EMPTY` when it gives none), with
        the arguments of :meth:`lines`; sets ``kept``."""
        if has_gold and not self.filters.include_gold:
            return EMPTY
        if self.excluded:
            ranked = None
            kept = [i for i, name in enumerate(names) if name not in self.excluded]
            names = [names[i] for i in kept]
            rankings = [rankings[i] for i in kept]
            rejects = [rejects[i] for i in kept]
        self.kept = len(names)
        if len(names) < self.filters.min_judgments:
            return EMPTY
        if self.by_labeler:
            key: tuple[Any, ...] = (*ids, "", *names, "", *rankings, *rejects)
        else:
            key = (
                *ids,
                len(names),
                *(ranked_texts(rankings, rejects) if ranked is None else ranked),
            )
        shape = self.shapes.get(key)
        if shape is None:
            shape = self._plan(ids, names, rankings, rejects)
            if len(self.shapes) >= MAX_SHAPES:
                self.shapes.clear()
            self.shapes[key] = shape
        return shape

    def _plan(
        self,
        ids: Sequence[str],
        names: Sequence[str],
        rankings: Sequence[str | None],
        rejects: Sequence[bool],
    ) -> Shape:
        judgments = [
            JudgmentData(name, None if reject else self.cache.tiers(ranking), reject)
            for name, ranking, reject in zip(names, rankings, rejects, strict=True)
        ]
        prompt = PromptData("", "", dict(zip(ids, ids, strict=True)), None, judgments)
        plan = plan_prompt(prompt, self.strategy, self.filters, self.method)
        if plan is None or not plan.records:
            return EMPTY
        slots = [_value_slot(i) for i in range(len(plan.ids))]
        block = plan_text(plan, _TEXT, _PROMPT_ID, slots)
        position = {cid: i for i, cid in enumerate(ids)}
        return Shape(block, tuple(position[cid] for cid in plan.ids), len(plan.records))

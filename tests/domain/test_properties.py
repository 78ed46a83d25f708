"""Property tests: pair counts, consensus symmetries, canonical bytes."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.consensus import consensus
from app.domain.export_filters import ExportFilters
from app.domain.jsonl import serialize_row, serialize_rows
from app.domain.pairs import STRATEGIES, JudgmentData, PromptData, pair_lines, pair_rows
from app.domain.rankings import pairwise_outcomes, ranked_pairs, tied_pairs

IDS = ["a", "b", "c", "d", "e", "f"]


@st.composite
def rankings(draw: st.DrawFn, ids: list[str], allow_ties: bool = True) -> list[list[str]]:
    order = draw(st.permutations(ids))
    tiers: list[list[str]] = [[order[0]]]
    for cid in order[1:]:
        if allow_ties and draw(st.booleans()):
            tiers[-1].append(cid)
        else:
            tiers.append([cid])
    return tiers


@st.composite
def prompt_rankings(draw: st.DrawFn) -> tuple[list[str], list[list[list[str]]]]:
    ids = IDS[: draw(st.integers(2, 6))]
    return ids, draw(st.lists(rankings(ids), min_size=1, max_size=6))


@given(st.integers(2, 6).flatmap(lambda k: rankings(IDS[:k], allow_ties=False)))
def test_a_strict_ranking_of_k_gives_all_pairs(tiers: list[list[str]]) -> None:
    k = len(tiers)
    pairs = ranked_pairs(tiers)
    assert len(pairs) == len(set(pairs)) == k * (k - 1) // 2
    assert tied_pairs(tiers) == []


@given(st.integers(2, 6).flatmap(lambda k: rankings(IDS[:k])))
def test_ranked_and_tied_pairs_agree_with_outcomes(tiers: list[list[str]]) -> None:
    outcomes = pairwise_outcomes(tiers)
    for winner, loser in ranked_pairs(tiers):
        key = (min(winner, loser), max(winner, loser))
        assert outcomes[key] == (1 if winner < loser else -1)
    assert sorted(tuple(sorted(p)) for p in tied_pairs(tiers)) == sorted(
        key for key, value in outcomes.items() if value == 0
    )


@settings(max_examples=60)
@given(prompt_rankings(), st.randoms(use_true_random=False))
def test_consensus_does_not_depend_on_judgment_order(
    data: tuple[list[str], list[list[list[str]]]], rnd: random.Random
) -> None:
    ids, tiers = data
    shuffled = tiers[:]
    rnd.shuffle(shuffled)
    first, second = consensus(tiers, ids), consensus(shuffled, list(reversed(ids)))
    assert first.order == second.order
    assert first.votes == second.votes
    assert first.scores == pytest.approx(second.scores, abs=1e-9)


@settings(max_examples=60)
@given(prompt_rankings())
def test_reversing_every_judgment_reverses_the_consensus(
    data: tuple[list[str], list[list[list[str]]]],
) -> None:
    ids, tiers = data
    forward = consensus(tiers, ids)
    backward = consensus([list(reversed(t)) for t in tiers], ids)
    assert backward.scores == pytest.approx({c: -s for c, s in forward.scores.items()}, abs=1e-7)
    assert backward.order == tuple(sorted(ids, key=lambda c: (forward.points[c], c)))
    for (first, second), votes in forward.votes.items():
        assert backward.pair(first, second) == (
            votes.second_over_first,
            votes.first_over_second,
            votes.ties,
        )


@settings(max_examples=60)
@given(prompt_rankings())
def test_bradley_terry_scores_order_like_borda_points(
    data: tuple[list[str], list[list[list[str]]]],
) -> None:
    ids, tiers = data
    cons = consensus(tiers, ids)
    for a in ids:
        for b in ids:
            if cons.points[a] > cons.points[b]:
                assert cons.scores[a] > cons.scores[b]


texts = st.text(min_size=0, max_size=30)


@settings(max_examples=80)
@given(
    prompt_rankings(),
    st.sampled_from(STRATEGIES),
    st.sampled_from(["drop", "keep"]),
    st.floats(0, 1),
    texts,
    st.booleans(),
)
def test_pair_lines_equal_serialized_rows_and_are_stable(
    data: tuple[list[str], list[list[list[str]]]],
    strategy: str,
    ties: str,
    min_agreement: float,
    text: str,
    conversational: bool,
) -> None:
    ids, tiers = data
    prompt_value = [{"role": "user", "content": text}] if conversational else text
    judgments = [JudgmentData(f"l{i % 3}", t) for i, t in enumerate(tiers)]
    prompt = PromptData("p\u00e9", prompt_value, {c: text + c for c in ids}, None, judgments)
    filters = ExportFilters(min_agreement=min_agreement, ties=ties)
    rows = pair_rows(prompt, strategy, filters)
    lines = pair_lines(prompt, strategy, filters)
    assert lines == serialize_rows(rows) == b"".join(serialize_row(r) for r in rows)
    assert lines == pair_lines(prompt, strategy, filters)
    assert [json.loads(line) for line in lines.splitlines()] == rows
    assert all(0 <= r["margin"] <= 1 and r["agreement"] >= min_agreement - 5e-5 for r in rows)

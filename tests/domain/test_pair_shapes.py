"""PairBlocks (one plan per judgment pattern, a template per plan) writes exactly the
bytes of pair_lines, prompt by prompt, whatever the strategy and filters, also when a
shape planned on one prompt is reused for prompts with other texts."""

from __future__ import annotations

import json
import random

import pytest

from app.domain.export_filters import ExportFilters
from app.domain.pair_shapes import PairBlocks, ranked_texts
from app.domain.pairs import STRATEGIES, JudgmentData, PromptData, pair_lines
from tests.helpers.tables import random_tiers

TEXTS = ["plain", 'a "quote" and a % sign', "tab\there\nnewline", "é 中文 😀", "%s %(x)s %%"]
FILTERS = [
    ExportFilters(),
    ExportFilters(ties="keep", include_gold=True),
    ExportFilters(min_judgments=2, min_agreement=0.5, exclude_labelers=("l1",)),
]


def _prompts(count: int = 400, seed: int = 3) -> list[PromptData]:
    rng = random.Random(seed)
    prompts = []
    for n in range(count):
        ids = rng.sample(["a", "b", "c", "d%"], rng.randint(2, 4))  # position order
        text: str | list[dict[str, str]] = f"{n} {rng.choice(TEXTS)}"
        if n % 5 == 0:
            text = [{"role": "user", "content": text}]
        judgments = []
        for labeler in sorted(rng.sample(["l0", "l1", "l2", "l3"], rng.randint(0, 4))):
            reject = rng.random() < 0.1
            judgments.append(
                JudgmentData(labeler, None if reject else random_tiers(rng, ids), reject)
            )
        gold = random_tiers(rng, ids) if n % 9 == 0 else None
        completions = {cid: f"{cid}: {rng.choice(TEXTS)} {n}" for cid in ids}
        prompts.append(PromptData(f"p{n}%", text, completions, gold, judgments))
    return prompts


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("filters", FILTERS)
def test_blocks_are_the_bytes_of_pair_lines(strategy: str, filters: ExportFilters) -> None:
    blocks = PairBlocks(strategy, filters)
    rows = 0
    for prompt in _prompts():
        names = [j.labeler for j in prompt.judgments]
        rankings = [None if j.tiers is None else json.dumps(j.tiers) for j in prompt.judgments]
        rejects = [j.reject_all for j in prompt.judgments]
        ids, texts = list(prompt.completions), list(prompt.completions.values())
        lines, count = blocks.lines(
            prompt.prompt_id,
            prompt.prompt,
            ids,
            texts,
            (names, rankings, rejects),
            prompt.gold is not None,
            None if filters.exclude_labelers else ranked_texts(rankings, rejects),
        )
        expected = pair_lines(prompt, strategy, filters)
        assert lines.encode() == expected
        assert count == expected.count(b"\n")
        rows += count
    assert rows > 100
    assert len(blocks.shapes) < 400  # shapes were shared between prompts


def test_unknown_strategy_is_refused_up_front() -> None:
    with pytest.raises(Exception, match="strategy"):
        PairBlocks("nope", ExportFilters())

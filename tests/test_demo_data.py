"""The demo prompt set (``app/demo/prompts.jsonl``) is valid SPEC §3 input and shows the app off."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DEMO = Path(__file__).resolve().parents[1] / "app" / "demo" / "prompts.jsonl"
ROLES = {"system", "user", "assistant"}


def load_rows() -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(DEMO.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            pytest.fail(f"line {number} is not JSON: {err}")
        assert isinstance(row, dict), f"line {number} is not a JSON object"
        rows.append(row)
    return rows


ROWS = load_rows()


def row_ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row.get("id", "?") for row in rows]


def test_enough_prompts_with_unique_ids() -> None:
    assert len(ROWS) >= 20
    ids = [row["id"] for row in ROWS]
    assert all(isinstance(i, str) and i for i in ids)
    assert [i for i, n in Counter(ids).items() if n > 1] == []


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_row_follows_the_import_format(row: dict[str, Any]) -> None:
    assert set(row) <= {"id", "prompt", "completions", "metadata", "gold"}
    assert row["metadata"] == {"source": "prefloop-demo", "topic": row["metadata"]["topic"]}
    assert isinstance(row["metadata"]["topic"], str) and row["metadata"]["topic"]
    completions = row["completions"]
    assert 3 <= len(completions) <= 9
    for completion in completions:
        assert set(completion) == {"id", "text", "model"}
        assert completion["model"] == "demo-writer"
        assert isinstance(completion["text"], str) and completion["text"].strip()
    ids = [c["id"] for c in completions]
    assert len(set(ids)) == len(ids), f"duplicate completion ids {ids}"


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_prompt_is_text_or_chat_messages(row: dict[str, Any]) -> None:
    prompt = row["prompt"]
    if isinstance(prompt, str):
        assert prompt.strip()
        return
    assert isinstance(prompt, list) and prompt
    for message in prompt:
        assert set(message) == {"role", "content"}
        assert message["role"] in ROLES and message["content"].strip()
    assert prompt[-1]["role"] == "user"


def test_gold_rankings_cover_each_completion_once() -> None:
    gold_rows = [row for row in ROWS if "gold" in row]
    assert len(gold_rows) >= 3
    for row in gold_rows:
        ranked = [cid for tier in row["gold"] for cid in tier]
        assert all(row["gold"]), f"{row['id']}: empty tier"
        assert sorted(ranked) == sorted(c["id"] for c in row["completions"]), row["id"]


def test_the_set_is_varied() -> None:
    topics = Counter(row["metadata"]["topic"] for row in ROWS)
    assert len(topics) >= 8
    assert topics["harmful"] >= 2
    chats = [row for row in ROWS if isinstance(row["prompt"], list)]
    assert sum(1 for row in chats if row["prompt"][0]["role"] == "system") >= 2
    best_first = {row["gold"][0][0] for row in ROWS if "gold" in row}
    assert len(best_first) > 1, "the best gold completion is always in the same position"


def test_one_prompt_carries_markup_that_must_be_escaped() -> None:
    texts = [c["text"] for row in ROWS for c in row["completions"]]
    assert any("<script>alert(1)</script>" in t for t in texts)
    assert any("<img src=x onerror=alert(1)>" in t for t in texts)

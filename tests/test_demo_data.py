"""The demo prompt set (``app/demo/prompts.jsonl``) is valid SPEC §3 input and shows the app off."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED

DEMO = Path(__file__).resolve().parents[1] / "app" / "demo" / "prompts.jsonl"
PUBLIC = DEMO.with_name("pandalm-pairs.jsonl")
PANDALM = SHARED / "data" / "pandalm" / "testset-v1.json"
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


ANNOTATORS = ("ext:pandalm-annotator-1", "ext:pandalm-annotator-2", "ext:pandalm-annotator-3")
CHOICE = {0: [["a", "b"]], 1: [["a"], ["b"]], 2: [["b"], ["a"]]}  # PandaLM: 0 = tie


def pandalm_rows(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The rule of ``app/demo/PANDALM.md``: PandaLM test rows -> the import format."""
    rows = []
    for r in records:
        if not (isinstance(r["response1"], str) and isinstance(r["response2"], str)):
            continue
        first, second = r["cmp_key"].split("_")
        rows.append(
            {
                "id": f"pandalm-{r['idx']}",
                "prompt": r["instruction"] + (f"\n\n{r['input']}" if r["input"] else ""),
                "completions": [
                    {"id": "a", "text": r["response1"], "model": first},
                    {"id": "b", "text": r["response2"], "model": second},
                ],
                "metadata": {
                    "source": "PandaLM testset-v1",
                    "idx": r["idx"],
                    "app": r["motivation_app"],
                },
                "judgments": [
                    {"labeler": name, "ranking": CHOICE[r[f"annotator{i}"]]}
                    for i, name in enumerate(ANNOTATORS, start=1)
                ],
            }
        )
    return rows[:limit]


def test_public_pairs_are_the_documented_subset_of_pandalm():
    if not PANDALM.is_file():
        pytest.skip(f"{PANDALM} is not here")
    shipped = PUBLIC.read_text(encoding="utf-8")
    rows = pandalm_rows(json.loads(PANDALM.read_text(encoding="utf-8")), 600)
    assert shipped == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_public_pairs_ship_with_their_license_and_judgments():
    rows = [json.loads(line) for line in PUBLIC.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 600 and len({r["id"] for r in rows}) == 600
    assert all([j["labeler"] for j in r["judgments"]] == list(ANNOTATORS) for r in rows)
    majorities = [Counter(json.dumps(j["ranking"]) for j in r["judgments"]) for r in rows]
    tops = [m.most_common(1)[0] for m in majorities]
    decisive = [top for top, votes in tops if votes >= 2 and top != json.dumps(CHOICE[0])]
    assert len(decisive) >= 450  # pairs with a majority for one side: what the export keeps
    license_text = (DEMO.parent / "PANDALM-LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0" in license_text
    assert "PANDALM-LICENSE" in (DEMO.parent / "PANDALM.md").read_text(encoding="utf-8")

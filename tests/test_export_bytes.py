"""Export bytes are pinned: a seeded, varied project (2 to 6 completions, ties,
reject_all, gold, chat prompts, escapes and non-ASCII text) gives the same
``pairs.jsonl`` sha256 and the same manifest figures for every strategy and filter set
as the straightforward implementation that produced these digests. Any speed-up of the
export path must keep them."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from app.services import agreement, exports
from tests.helpers.judged import seed_project

TEXTS = [
    "plain",
    'quote " and backslash \\ here',
    "new\nline\ttab\rcr",
    "control \x01\x1f and del \x7f",
    "non-ASCII é 中文 😀 \u2028\u2029",
    "</script> & <b>",
]


def _ranking(rng: random.Random, ids: list[str]) -> list[list[str]]:
    order = ids[:]
    rng.shuffle(order)
    tiers: list[list[str]] = []
    for cid in order:
        if tiers and rng.random() < 0.25:
            tiers[-1].append(cid)
        else:
            tiers.append([cid])
    return tiers


def _record(rng: random.Random, n: int) -> dict[str, Any]:
    ids = [chr(97 + c) for c in range(rng.randint(2, 6))]
    rng.shuffle(ids)  # completions stored in an order other than by id
    text = f"Prompt {n}: {rng.choice(TEXTS)}"
    prompt: Any = text
    if n % 7 == 0:
        prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    judgments = []
    for labeler in rng.sample(range(9), rng.randint(0, 5)):
        if rng.random() < 0.1:
            judgments.append({"labeler": f"ext:l{labeler}", "reject_all": True})
        else:
            judgments.append({"labeler": f"ext:l{labeler}", "ranking": _ranking(rng, ids)})
    record = {
        "id": f"q{n:04d}",
        "prompt": prompt,
        "completions": [{"id": c, "text": f"{c} {rng.choice(TEXTS)} {n}"} for c in ids],
        "judgments": judgments,
    }
    if n % 11 == 0:
        record["gold"] = _ranking(rng, ids)
    return record


def varied_records(count: int = 240, seed: int = 13) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [_record(rng, n) for n in range(count)]


CASES = [
    ("consensus", {}),
    ("consensus", {"ties": "keep", "include_gold": True}),
    ("consensus", {"min_judgments": 3, "min_agreement": 0.6, "exclude_labelers": ["ext:l2"]}),
    ("best_vs_rest", {}),
    ("best_vs_worst", {"ties": "keep"}),
    ("all", {}),
    ("all", {"ties": "keep", "exclude_labelers": ["ext:l0", "ext:l5"]}),
]

# sha256 of pairs.jsonl per case, and of the manifest's agreement object (all cases).
PINNED = [
    "77d61115259413c4ab07a148fd554667d1b0b2749e8f8f274cd240dbecdd140e",
    "f2cabf04929ecc233c420f61a80aacd937f4c8e78242fedf0cda96d0663995f1",
    "ba6bb018e9e3810b9d8dc84de4963cb2efdd04348a88850c194a65569bb93dc7",
    "9e0ad316826c61669971dc6b76c57e9c62ae4bfa896672c48f9357e4a3101e78",
    "0494e42579fc70f9b913cb71ebd8ede8638980ec8928ac15b8cad01742995485",
    "693ee9d2a68f740d32b80304eaa4b6feb30fed866440b8c5ac908ab1e4a1640c",
    "a967fc0c963a6dfbaf6e6f2c49903fbebb07b280b86cf1517b8d818fd805267b",
]
PINNED_AGREEMENT = "058dfef3e864cb39358ee0dccc36ad14b3c30a7d0b6bbc0b7f7db6b9f6b95d90"
PINNED_REPORT = "31947f4691eda661a0b0d54efb1de391172c837f71dfe7d47e192442733a113d"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


@pytest.fixture
def varied(db):
    return seed_project(db, varied_records(), name="varied")


def test_export_bytes_and_figures_are_pinned(db, settings, varied):
    digests, agreements = [], set()
    for strategy, filters in CASES:
        export = exports.create_export(db, settings, varied, strategy, filters)
        data = (exports.export_file(export, exports.PAIRS_FILE)).read_bytes()
        assert hashlib.sha256(data).hexdigest() == export.manifest["sha256"]
        assert data.count(b"\n") == export.manifest["counts"]["pairs"] > 0
        digests.append(export.manifest["sha256"])
        agreements.add(_digest(export.manifest["agreement"]))
    assert digests == PINNED
    assert agreements == {PINNED_AGREEMENT}


def test_agreement_report_is_pinned(db, varied):
    report = agreement.agreement_report(db, varied)
    assert report.pop("project_id") == varied.id
    assert report["counts"]["judgments"] > 500 and len(report["per_labeler"]) == 9
    # no suspects run in this project: its fields are null (the pin predates them)
    assert report.pop("suspects_run_id") is None
    assert [entry.pop("flagged") for entry in report["per_labeler"]] == [None] * 9
    assert _digest(report) == PINNED_REPORT

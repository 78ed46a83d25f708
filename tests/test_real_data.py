"""Real multi-annotator data through the import API, the agreement API and the export API.

* PandaLM test set v1: 999 response pairs, each labeled by three annotators
  (0 = tie, 1 = response 1 better, 2 = response 2 better). The PandaLM paper reports
  Cohen's kappa 0.85 (annotators 1-2), 0.88 (1-3) and 0.86 (2-3).
* Open-Assistant: 100 English message trees whose sibling assistant replies carry a
  ``rank``; every parent with at least two ranked replies becomes a K-way ranking.

Skipped when the shared data folder (beside the repository) is absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
PANDALM = SHARED / "data" / "pandalm" / "testset-v1.json"
OASST = SHARED / "data" / "oasst" / "en_100_tree.jsonl"
PUBLISHED_KAPPA = {("1", "2"): 0.85, ("1", "3"): 0.88, ("2", "3"): 0.86}
PANDALM_RANKINGS = {0: [["1", "2"]], 1: [["1"], ["2"]], 2: [["2"], ["1"]]}
ROLES = {"prompter": "user", "assistant": "assistant"}


def needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is not available")


def pandalm_items() -> list[dict[str, Any]]:
    return json.loads(PANDALM.read_text())


def pandalm_records() -> list[dict[str, Any]]:
    """One prompt per item: instruction (+ input), responses "1" and "2", three judgments."""
    records = []
    for item in pandalm_items():
        prompt = item["instruction"] + (f"\n\n{item['input']}" if item["input"] else "")
        records.append(
            {
                "id": str(item["idx"]),
                "prompt": prompt,
                # a few responses are JSON booleans (True / False answers); keep their text
                "completions": [{"id": n, "text": str(item[f"response{n}"])} for n in "12"],
                "metadata": {"cmp_key": item["cmp_key"], "app": item["motivation_app"]},
                "judgments": [
                    {"labeler": f"ext:annotator{n}", "ranking": PANDALM_RANKINGS[label]}
                    for n, label in ((n, item[f"annotator{n}"]) for n in "123")
                ],
            }
        )
    return records


def _ranked_parents(
    message: dict[str, Any], path: list[dict[str, str]]
) -> Iterator[dict[str, Any]]:
    """Depth first: a record for every message with at least two ranked replies."""
    history = [*path, {"role": ROLES[message["role"]], "content": message["text"]}]
    replies = message.get("replies", [])
    ranked = sorted((r for r in replies if r.get("rank") is not None), key=lambda r: r["rank"])
    if len(ranked) >= 2:
        tiers: dict[int, list[str]] = {}
        for reply in ranked:
            tiers.setdefault(reply["rank"], []).append(reply["message_id"])
        yield {
            "id": message["message_id"],
            # the first question as plain text, a later turn as the conversation so far
            "prompt": history[0]["content"] if len(history) == 1 else history,
            "completions": [{"id": r["message_id"], "text": r["text"]} for r in ranked],
            "judgments": [{"labeler": "ext:oasst", "ranking": list(tiers.values())}],
        }
    for reply in replies:
        yield from _ranked_parents(reply, history)


def oasst_records() -> list[dict[str, Any]]:
    trees = [json.loads(line) for line in OASST.read_text().splitlines() if line.strip()]
    return [record for tree in trees for record in _ranked_parents(tree["prompt"], [])]


def import_through_api(client, headers, name: str, records: list[dict[str, Any]]) -> int:
    project = client.post("/api/v1/projects", json={"name": name}, headers=headers)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    response = client.post(
        f"/api/v1/projects/{project_id}/import?format=jsonl",
        content=body,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == len(records)
    return project_id


def test_pandalm_kappa_matches_the_published_values(client, admin_headers):
    needs(PANDALM)
    project_id = import_through_api(client, admin_headers, "pandalm", pandalm_records())
    response = client.get(f"/api/v1/projects/{project_id}/agreement", headers=admin_headers)
    assert response.status_code == 200
    report = response.json()
    assert report["counts"] == {"prompts": 999, "judgments": 2997, "units": 999, "labelers": 3}
    kappa = {entry["labeler"]: entry["kappa"] for entry in report["per_labeler"]}
    measured = {(a, b): kappa[f"ext:annotator{a}"][f"ext:annotator{b}"] for a, b in PUBLISHED_KAPPA}
    print("PandaLM Cohen's kappa (annotators a-b):", measured)
    for pair, published in PUBLISHED_KAPPA.items():
        assert round(measured[pair], 2) == published, pair
        assert kappa[f"ext:annotator{pair[1]}"][f"ext:annotator{pair[0]}"] == measured[pair]
    assert 0.85 < report["alpha_nominal"] < 0.9
    assert all(entry["judgments"] == 999 for entry in report["per_labeler"])


def test_pandalm_consensus_export_keeps_majority_pairs(client, admin_headers):
    needs(PANDALM)
    records = pandalm_records()
    project_id = import_through_api(client, admin_headers, "pandalm-export", records)
    created = client.post(
        f"/api/v1/projects/{project_id}/exports",
        json={"strategy": "consensus", "filters": {"min_agreement": 0.6}},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    # a preference row needs at least 2 of the 3 annotators preferring the same response
    expected = sum(
        max(labels.count(1), labels.count(2)) >= 2
        for labels in ([item[f"annotator{n}"] for n in "123"] for item in pandalm_items())
    )
    manifest = created.json()["manifest"]
    assert manifest["counts"]["pairs"] == expected
    print(f"PandaLM consensus pairs with agreement >= 0.6: {expected} of {len(records)}")


def test_oasst_rankings_export_every_pair(client, admin_headers):
    needs(OASST)
    records = oasst_records()
    sizes = [len(r["completions"]) for r in records]
    expected = sum(k * (k - 1) // 2 for k in sizes)
    assert len(records) > 100 and max(sizes) > 3
    project_id = import_through_api(client, admin_headers, "oasst", records)
    for strategy in ("all", "consensus"):
        created = client.post(
            f"/api/v1/projects/{project_id}/exports",
            json={"strategy": strategy, "filters": {"ties": "drop"}},
            headers=admin_headers,
        )
        assert created.status_code == 201, created.text
        manifest = created.json()["manifest"]
        assert manifest["counts"]["pairs"] == expected, strategy
        assert manifest["counts"]["prompts"] == len(records)
    pairs = client.get(f"/api/v1/exports/{created.json()['id']}/pairs.jsonl", headers=admin_headers)
    rows = [json.loads(line) for line in pairs.text.splitlines()]
    assert len(rows) == expected
    chat = [r for r in rows if isinstance(r["prompt"], list)]
    assert chat and all(r["prompt"][-1]["role"] == "user" for r in chat)
    assert all(r["chosen"][0]["role"] == "assistant" for r in chat)
    by_id = {r["id"]: r for r in records}
    first = rows[0]
    ranking = by_id[first["prompt_id"]]["judgments"][0]["ranking"]
    order = [cid for tier in ranking for cid in tier]
    assert order.index(first["chosen_id"]) < order.index(first["rejected_id"])

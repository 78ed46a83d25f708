"""Exports (SPEC §4, §5, §7): rows, bytes, manifest, filters, downloads, errors, roles,
on the small hand-checkable project of ``tests.helpers.judged``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.models import Export
from app.domain import project_summary
from app.services import exports, projects
from tests.helpers.judged import SMALL, prompt, ranking, seed_project


def create(client, headers, project_id: int, **body: Any):
    return client.post(f"/api/v1/projects/{project_id}/exports", json=body, headers=headers)


def rows_of(client, headers, export_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/exports/{export_id}/pairs.jsonl", headers=headers)
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


def key(row: dict[str, Any]) -> tuple:
    return (
        row["prompt_id"],
        row["chosen_id"],
        row["rejected_id"],
        row["votes_for"],
        row["votes_against"],
        row["votes_tie"],
        row["n_judgments"],
        row["margin"],
        row["agreement"],
    )


# (prompt, chosen, rejected, for, against, tie, n_judgments, margin, agreement), by hand;
# margin is the chosen completion's vote share (votes_for / ranking judgments):
# p1 consensus a > b > c (Borda points 5, 3, 1); p2 a > b with one tie vote; p3 b > a;
# p4 is a gold prompt (left out); p5 has a reject_all judgment (counts in n_judgments).
CONSENSUS_ROWS = [
    ("p1", "a", "b", 2, 1, 0, 3, 0.6667, 0.6667),
    ("p1", "a", "c", 3, 0, 0, 3, 1.0, 1.0),
    ("p1", "b", "c", 2, 1, 0, 3, 0.6667, 0.6667),
    ("p2", "a", "b", 1, 0, 1, 2, 0.5, 0.5),
    ("p3", "b", "a", 1, 0, 0, 1, 1.0, 1.0),
    ("p5", "a", "b", 1, 0, 0, 2, 1.0, 1.0),
]


def test_consensus_export_matches_hand_computed_rows(client, db, admin_headers, settings):
    project = seed_project(db, SMALL)
    response = create(client, admin_headers, project.id)
    assert response.status_code == 201
    body = response.json()
    manifest = body["manifest"]
    rows = rows_of(client, admin_headers, body["id"])
    assert [key(r) for r in rows] == CONSENSUS_ROWS
    assert [r["prompt"] for r in rows][:1] == ["Question p1?"]
    chat = rows[4]
    assert chat["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert chat["chosen"] == [{"role": "assistant", "content": "answer b of p3"}]
    assert chat["rejected"] == [{"role": "assistant", "content": "answer a of p3"}]
    assert rows[0]["chosen"] == "answer a of p1" and rows[0]["rejected"] == "answer b of p1"
    assert manifest["format_version"] == 1
    assert manifest["id"] == body["id"]
    assert manifest["project"] == {"id": project.id, "name": "small"}
    assert manifest["strategy"] == "consensus"
    assert manifest["filters"] == {
        "min_judgments": 1,
        "min_agreement": 0.0,
        "exclude_labelers": [],
        "include_gold": False,
        "ties": "drop",
    }
    assert manifest["counts"] == {"prompts": 4, "judgments": 8, "pairs": 6}
    assert manifest["method"]["consensus"] == "bradley_terry"
    assert manifest["method"]["margin"].startswith("votes_for / n_ranking_judgments")
    folder = settings.exports_dir / str(body["id"])
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "pairs.jsonl"]
    assert [p.name for p in settings.exports_dir.iterdir()] == [str(body["id"])]
    data = (folder / "pairs.jsonl").read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_same_data_and_settings_give_the_same_bytes(client, db, admin_headers):
    project = seed_project(db, SMALL)
    first = create(client, admin_headers, project.id, strategy="all").json()
    second = create(client, admin_headers, project.id, strategy="all").json()
    assert first["id"] != second["id"]
    pairs = [
        client.get(f"/api/v1/exports/{e['id']}/pairs.jsonl", headers=admin_headers).content
        for e in (first, second)
    ]
    assert pairs[0] == pairs[1] and pairs[0]
    assert first["manifest"]["sha256"] == second["manifest"]["sha256"]
    assert first["manifest"]["sha256"] == hashlib.sha256(pairs[0]).hexdigest()
    differing = {k for k in first["manifest"] if first["manifest"][k] != second["manifest"][k]}
    assert differing <= {"id", "created_at"}


def test_manifest_agreement_is_the_project_figures(client, db, admin_headers):
    project = seed_project(db, SMALL)
    manifest = create(client, admin_headers, project.id).json()["manifest"]
    figures = client.get(f"/api/v1/projects/{project.id}/agreement", headers=admin_headers).json()
    for name in (
        "alpha_nominal",
        "alpha_interval",
        "pairwise_agreement",
        "mean_kendall_w",
        "counts",
    ):
        assert manifest["agreement"][name] == figures[name], name
    assert manifest["agreement"]["counts"]["judgments"] == 9
    assert "ci95" not in manifest["agreement"]


def test_manifest_figures_do_not_depend_on_the_chunk_size(db, settings, monkeypatch):
    project = seed_project(db, SMALL)
    whole = exports.create_export(db, settings, project).manifest["agreement"]
    monkeypatch.setattr(project_summary, "CHUNK_PROMPTS", 1)
    chunked = exports.create_export(db, settings, project).manifest["agreement"]
    assert chunked == whole and whole["pairwise_agreement"] is not None


def test_downloads_stream_the_files(client, db, admin_headers, settings):
    project = seed_project(db, SMALL)
    export_id = create(client, admin_headers, project.id).json()["id"]
    folder = settings.exports_dir / str(export_id)
    pairs = client.get(f"/api/v1/exports/{export_id}/pairs.jsonl", headers=admin_headers)
    assert pairs.headers["content-type"].startswith("application/x-ndjson")
    assert pairs.content == (folder / "pairs.jsonl").read_bytes()
    manifest = client.get(f"/api/v1/exports/{export_id}/manifest.json", headers=admin_headers)
    assert manifest.headers["content-type"].startswith("application/json")
    assert manifest.content == (folder / "manifest.json").read_bytes()
    listed = client.get(f"/api/v1/projects/{project.id}/exports", headers=admin_headers).json()
    assert [e["id"] for e in listed] == [export_id]
    assert listed[0]["files"]["pairs.jsonl"] == f"/api/v1/exports/{export_id}/pairs.jsonl"
    assert (
        client.get("/api/v1/exports/999999/pairs.jsonl", headers=admin_headers).status_code == 404
    )


def pair_keys(rows: list[dict[str, Any]]) -> list[tuple]:
    return [
        (r["prompt_id"], r["chosen_id"], r["rejected_id"], r.get("tie"), r.get("labeler"))
        for r in rows
    ]


@pytest.mark.parametrize(
    ("strategy", "filters", "expected"),
    [
        (
            "consensus",
            {"min_judgments": 3},
            [
                ("p1", "a", "b", None, None),
                ("p1", "a", "c", None, None),
                ("p1", "b", "c", None, None),
            ],
        ),
        (
            "consensus",
            {"min_agreement": 0.7},
            [
                ("p1", "a", "c", None, None),
                ("p3", "b", "a", None, None),
                ("p5", "a", "b", None, None),
            ],
        ),
        # without z, p1's b and c are tied 1-1 (a tie row: dropped), and p3 loses nothing
        (
            "consensus",
            {"exclude_labelers": ["ext:z"], "min_judgments": 2},
            [
                ("p1", "a", "b", None, None),
                ("p1", "a", "c", None, None),
                ("p2", "a", "b", None, None),
                ("p5", "a", "b", None, None),
            ],
        ),
        (
            "consensus",
            {"include_gold": True, "min_judgments": 1, "min_agreement": 1.0},
            [
                ("p1", "a", "c", None, None),
                ("p3", "b", "a", None, None),
                ("p4", "a", "b", None, None),
                ("p5", "a", "b", None, None),
            ],
        ),
        # without y, p1's a and b are 1-1 (a tie row); p5 keeps only a reject_all
        (
            "consensus",
            {"ties": "keep", "exclude_labelers": ["ext:y"]},
            [
                ("p1", "a", "b", True, None),
                ("p1", "a", "c", False, None),
                ("p1", "b", "c", False, None),
                ("p2", "a", "b", True, None),
                ("p3", "b", "a", False, None),
            ],
        ),
        (
            "best_vs_worst",
            {"min_judgments": 2},
            [
                ("p1", "a", "c", None, None),
                ("p2", "a", "b", None, None),
                ("p5", "a", "b", None, None),
            ],
        ),
        (
            "best_vs_rest",
            {"min_judgments": 3},
            [("p1", "a", "b", None, None), ("p1", "a", "c", None, None)],
        ),
        (
            "all",
            {"min_judgments": 2, "ties": "keep"},
            [
                ("p1", "a", "b", False, "ext:x"),
                ("p1", "a", "c", False, "ext:x"),
                ("p1", "b", "c", False, "ext:x"),
                ("p1", "a", "c", False, "ext:y"),
                ("p1", "a", "b", False, "ext:y"),
                ("p1", "c", "b", False, "ext:y"),
                ("p1", "b", "a", False, "ext:z"),
                ("p1", "b", "c", False, "ext:z"),
                ("p1", "a", "c", False, "ext:z"),
                ("p2", "a", "b", True, "ext:x"),
                ("p2", "a", "b", False, "ext:y"),
                ("p5", "a", "b", False, "ext:y"),
            ],
        ),
    ],
)
def test_strategies_and_filters_through_the_api(
    client, db, admin_headers, strategy, filters, expected
):
    project = seed_project(db, SMALL)
    response = create(client, admin_headers, project.id, strategy=strategy, filters=filters)
    assert response.status_code == 201, response.text
    manifest = response.json()["manifest"]
    rows = rows_of(client, admin_headers, response.json()["id"])
    assert pair_keys(rows) == expected
    assert manifest["counts"]["pairs"] == len(expected)
    assert manifest["counts"]["prompts"] == len({r["prompt_id"] for r in rows})
    assert manifest["strategy"] == strategy
    assert {k: manifest["filters"][k] for k in filters} == filters


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"strategy": "best"}, "strategy"),
        ({"strategy": 3}, "strategy"),
        ({"filters": {"min_agreement": 2}}, "filters.min_agreement"),
        ({"filters": {"min_judgments": -1}}, "filters.min_judgments"),
        ({"filters": {"ties": "sometimes"}}, "filters.ties"),
        ({"filters": {"include_gold": "yes"}}, "filters.include_gold"),
        ({"filters": {"exclude_labelers": "ext:x"}}, "filters.exclude_labelers"),
        ({"filters": {"min_votes": 2}}, "filters.min_votes"),
        ({"filters": ["ties"]}, "filters"),
        ({"strategy": "all", "format": "csv"}, "format"),
    ],
)
def test_bad_strategy_or_filters_is_422_naming_the_field(
    client, db, admin_headers, settings, body, field
):
    project = seed_project(db, SMALL)
    response = create(client, admin_headers, project.id, **body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert field in [d["field"] for d in error["details"]]
    assert field in error["message"]
    assert db.scalar(select(func.count()).select_from(Export)) == 0
    assert not settings.exports_dir.exists() or not any(settings.exports_dir.iterdir())


def test_labeler_is_refused_everywhere(client, db, admin_headers, make_user, token_for):
    project = seed_project(db, SMALL)
    export_id = create(client, admin_headers, project.id).json()["id"]
    labeler = make_user("labeler")
    projects.add_member(db, project, labeler.username)
    headers = token_for(labeler)
    for method, path in [
        ("post", f"/api/v1/projects/{project.id}/exports"),
        ("get", f"/api/v1/projects/{project.id}/exports"),
        ("get", f"/api/v1/exports/{export_id}"),
        ("get", f"/api/v1/exports/{export_id}/pairs.jsonl"),
        ("get", f"/api/v1/exports/{export_id}/manifest.json"),
        ("get", f"/api/v1/projects/{project.id}/agreement"),
    ]:
        response = client.request(method, path, headers=headers, json={})
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"


def test_unknown_project_is_404(client, admin_headers):
    assert create(client, admin_headers, 424242).status_code == 404


def test_failed_export_leaves_no_row_and_no_files(client, db, admin_headers, settings, monkeypatch):
    project = seed_project(db, SMALL)
    rows = exports.iter_prompt_rows

    def failing(session, project_id):
        for n, row in enumerate(rows(session, project_id)):
            if n == 2:
                raise OSError("disk full")
            yield row

    monkeypatch.setattr(exports, "iter_prompt_rows", failing)
    with pytest.raises(OSError, match="disk full"):
        exports.create_export(db, settings, project)
    assert db.scalar(select(func.count()).select_from(Export)) == 0
    assert list(settings.exports_dir.iterdir()) == []


def test_stale_staging_folders_are_removed(db, settings):
    project = seed_project(db, SMALL)
    settings.exports_dir.mkdir(parents=True)
    stale = settings.exports_dir / ".tmp-export-crashed"
    fresh = settings.exports_dir / ".tmp-export-running"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "pairs.jsonl").write_text("{}\n")
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))
    exports.create_export(db, settings, project)
    assert not stale.exists() and fresh.exists()


def test_failed_commit_removes_the_placed_folder(db, settings, monkeypatch):
    project = seed_project(db, SMALL)

    def refuse() -> None:
        raise RuntimeError("commit refused")

    monkeypatch.setattr(db, "commit", refuse)
    with pytest.raises(RuntimeError, match="commit refused"):
        exports.create_export(db, settings, project)
    assert list(settings.exports_dir.iterdir()) == []


def test_adaptive_overlap_prompts_with_more_than_k_judgments(client, db, admin_headers):
    crowd = {name: ranking("a", "b") for name in ("q", "r", "s", "t")} | {"u": ranking("b", "a")}
    records = [prompt("big", "ab", crowd), prompt("k", "ab", {"q": ranking("a", "b")})]
    project = seed_project(db, records, adaptive={"max_labels": 5, "min_agreement": 0.8})
    response = create(client, admin_headers, project.id, filters={"min_judgments": 4})
    rows = rows_of(client, admin_headers, response.json()["id"])
    assert [key(r) for r in rows] == [("big", "a", "b", 4, 1, 0, 5, 0.8, 0.8)]
    everything = create(client, admin_headers, project.id, strategy="all").json()
    assert everything["manifest"]["counts"] == {"prompts": 2, "judgments": 6, "pairs": 6}


def test_export_loads_with_datasets_in_trl_columns(client, db, admin_headers, tmp_path):
    datasets = pytest.importorskip("datasets")
    records = [r for r in SMALL if r["id"] != "p3"]  # one prompt format per file, like TRL
    project = seed_project(db, records)
    export_id = create(client, admin_headers, project.id).json()["id"]
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(
        client.get(f"/api/v1/exports/{export_id}/pairs.jsonl", headers=admin_headers).content
    )
    dataset = datasets.load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected", "margin"} <= set(dataset.column_names)
    assert dataset.num_rows == 5
    assert dataset[0]["chosen"] == "answer a of p1"
    assert all(isinstance(m, float) for m in dataset["margin"])


def test_chat_export_loads_in_conversational_format(client, db, admin_headers, tmp_path):
    datasets = pytest.importorskip("datasets")
    project = seed_project(db, [r for r in SMALL if r["id"] == "p3"])
    export_id = create(client, admin_headers, project.id).json()["id"]
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(
        client.get(f"/api/v1/exports/{export_id}/pairs.jsonl", headers=admin_headers).content
    )
    row = datasets.load_dataset("json", data_files=str(path), split="train")[0]
    assert row["prompt"][-1] == {"role": "user", "content": "Hi"}
    assert row["chosen"] == [{"role": "assistant", "content": "answer b of p3"}]

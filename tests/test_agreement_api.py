"""Agreement figures through the API and the CLI (SPEC §6, §7, §8), on a project small
enough to compute every figure by hand."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.models import Judgment, Prompt
from app.services import projects
from tests.helpers.judged import A_B, OUTCOMES, hand_project, seed_project


def get_agreement(client, headers, project_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/agreement", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_figures_computed_by_hand(client, db, admin_headers):
    project = seed_project(db, hand_project())
    report = get_agreement(client, admin_headers, project.id)
    # 23 units: 20 pairs + the 3 pairs of w, where x and y agree on (a,c) and (b,c) only.
    # Values: x gives +1 on 15 units, y on 14; they agree on 10 (+1,+1) + 2 + 6 (-1,-1).
    assert report["pairwise_agreement"] == pytest.approx(18 / 23, abs=1e-4)
    # Krippendorff: coincidences o++ = 24, o-- = 12, o+- = o-+ = 5 (n = 46; n+ 29, n- 17).
    alpha = 1 - (10 / 46) / (2 * 29 * 17 / (46 * 45))
    assert report["alpha_nominal"] == pytest.approx(alpha, abs=1e-4)
    assert report["alpha_interval"] == pytest.approx(alpha, abs=1e-4)  # two values only
    # Kendall's W of w: rank sums a 3, b 3, c 6 (mean 4): S = 6, W = 12 S / (m^2 (k^3 - k)).
    assert report["mean_kendall_w"] == pytest.approx(12 * 6 / (4 * 24), abs=1e-4)
    assert report["counts"] == {"prompts": 21, "judgments": 42, "units": 23, "labelers": 2}
    for name in ("alpha_nominal", "pairwise_agreement"):
        low, high = report["ci95"][name]
        assert low <= report[name] <= high
    # W is defined on one prompt only, so its bootstrap interval collapses onto it
    assert report["ci95"]["mean_kendall_w"] == [0.75, 0.75]
    # Cohen's kappa: po = 18/23; pe = (15*14 + 8*9) / 23^2  ->  kappa = 132 / 247.
    kappa = 132 / 247
    x, y = report["per_labeler"]
    assert x == {
        "labeler": "ext:x",
        "judgments": 21,
        "agreement": pytest.approx(18 / 23, abs=1e-4),  # leave-one-out consensus = y
        "kappa": {"ext:y": pytest.approx(kappa, abs=1e-4)},
        "gold_accuracy": 1.0,
        "position_bias": None,
        "median_seconds": None,
        "flagged": None,  # no suspects run in this project
    }
    assert report["suspects_run_id"] is None
    assert y["labeler"] == "ext:y" and y["gold_accuracy"] == 0.0
    assert y["kappa"] == {"ext:x": pytest.approx(kappa, abs=1e-4)}


def test_alpha_matches_the_krippendorff_package(client, db, admin_headers):
    krippendorff = pytest.importorskip("krippendorff")
    project = seed_project(db, hand_project())
    report = get_agreement(client, admin_headers, project.id)
    units = [(1 if x == A_B else -1, 1 if y == A_B else -1) for x, y in OUTCOMES]
    units += [(1, -1), (1, 1), (1, 1)]
    reliability = [[u[0] for u in units], [u[1] for u in units]]
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert report["alpha_nominal"] == pytest.approx(expected, abs=1e-4)


def test_kappa_needs_twenty_shared_prompts(client, db, admin_headers):
    records = [r for r in hand_project() if r["id"] not in ("w", "t00")]
    project = seed_project(db, records)
    report = get_agreement(client, admin_headers, project.id)
    assert [entry["kappa"] for entry in report["per_labeler"]] == [{}, {}]


def test_timing_and_position_bias_of_site_judgments(client, db, admin_headers, make_user):
    project = seed_project(db, hand_project()[:3])
    labeler = make_user("labeler", "lena")
    prompts = db.query(Prompt).filter_by(project_id=project.id).order_by(Prompt.id).all()
    shown = [["a", "b"], ["b", "a"], ["a", "b"]]  # a ranked best each time: top, not, top
    for p, order, ms in zip(prompts, shown, (4000, 10_000, 7000), strict=True):
        db.add(
            Judgment(
                project_id=project.id,
                prompt_id=p.id,
                labeler_id=labeler.id,
                ranking=A_B,
                display_order=order,
                duration_ms=ms,
            )
        )
    db.commit()
    report = get_agreement(client, admin_headers, project.id)
    lena = next(e for e in report["per_labeler"] if e["labeler"] == "lena")
    assert lena["judgments"] == 3
    assert lena["median_seconds"] == 7.0
    assert lena["position_bias"] == pytest.approx(2 / 3, abs=1e-4)


def test_empty_project_has_no_figures(client, db, admin_headers):
    project = projects.create_project(db, "empty")
    report = get_agreement(client, admin_headers, project.id)
    assert report["alpha_nominal"] is None and report["pairwise_agreement"] is None
    assert report["per_labeler"] == []
    assert report["counts"]["judgments"] == 0


def test_agreement_of_unknown_project_is_404(client, admin_headers):
    response = client.get("/api/v1/projects/999999/agreement", headers=admin_headers)
    assert response.status_code == 404


@pytest.fixture
def committed_db(databases, tmp_path, monkeypatch) -> str:
    """A fresh database with the hand project committed, and the CLI's environment."""
    url = databases.new()
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            seed_project(session, hand_project(), name="hand")
    finally:
        engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return url


def test_cli_agreement_prints_the_tables(committed_db):
    result = CliRunner().invoke(cli, ["agreement", "hand"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["figure", "value", "95%", "CI"]
    figures = {line.split()[0]: line.split()[1] for line in lines[2:6]}
    assert figures == {
        "alpha_nominal": f"{1 - (10 / 46) / (986 / 2070):.3f}",
        "alpha_interval": f"{1 - (10 / 46) / (986 / 2070):.3f}",
        "pairwise_agreement": f"{18 / 23:.3f}",
        "mean_kendall_w": "0.750",
    }
    assert "counts: 21 prompts, 42 judgments, 23 units, 2 labelers" in result.output
    x_row = next(line for line in lines if line.startswith("ext:x"))
    assert x_row.split()[:4] == ["ext:x", "21", f"{18 / 23:.3f}", "1.000"]
    assert x_row.endswith(f"ext:y={132 / 247:.3f}")


def test_cli_agreement_unknown_project_fails_clearly(committed_db):
    result = CliRunner().invoke(cli, ["agreement", "nope"])
    assert result.exit_code == 1
    assert "no project 'nope'" in result.output


def test_cli_export_writes_the_files_and_registers_the_export(committed_db, tmp_path):
    out = tmp_path / "out"
    args = [
        "export",
        "hand",
        "--out",
        str(out),
        "--strategy",
        "all",
        "--min-judgments",
        "2",
        "--exclude-labeler",
        "ext:y",
        "--ties",
        "keep",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "pairs.jsonl"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filters"]["exclude_labelers"] == ["ext:y"]
    assert manifest["counts"] == {"prompts": 0, "judgments": 0, "pairs": 0}  # x alone: < 2
    stored = tmp_path / "data" / "exports" / str(manifest["id"])
    assert (stored / "pairs.jsonl").read_bytes() == (out / "pairs.jsonl").read_bytes()
    again = CliRunner().invoke(cli, ["export", "hand", "--out", str(out)])
    assert again.exit_code == 0, again.output
    # consensus: the 4 split pairs are ties (dropped, t17 is gold anyway), w gives 2 rows
    assert "18 pairs from 17 prompts (34 judgments)" in again.output


def test_cli_export_bad_filter_names_it(committed_db, tmp_path):
    result = CliRunner().invoke(
        cli, ["export", "hand", "--out", str(tmp_path / "o"), "--ties", "maybe"]
    )
    assert result.exit_code == 1
    assert "filters.ties" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_export_out_must_be_a_folder(committed_db, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    result = CliRunner().invoke(cli, ["export", "hand", "--out", str(target)])
    assert result.exit_code == 1
    assert "--out must be a folder" in result.output


def test_every_labeler_pair_is_symmetric(client, db, admin_headers):
    project = seed_project(db, hand_project())
    per_labeler = get_agreement(client, admin_headers, project.id)["per_labeler"]
    for a, b in itertools.permutations(per_labeler, 2):
        assert a["kappa"][b["labeler"]] == b["kappa"][a["labeler"]]


def test_answer_is_the_service_report_key_for_key(client, db, admin_headers):
    """The response model re-serializes the service's report without dropping, adding or
    reordering a key (the answer stayed byte-compatible when the model was introduced)."""
    from app.services import agreement

    project = seed_project(db, hand_project())
    response = client.get(f"/api/v1/projects/{project.id}/agreement", headers=admin_headers)
    expected = json.loads(json.dumps(agreement.agreement_report(db, project)))
    assert list(response.json()) == list(expected)
    assert response.json() == expected
    assert [list(row) for row in response.json()["per_labeler"]] == [
        list(row) for row in expected["per_labeler"]
    ]

"""The agreement dashboard and its export form (SPEC §7 ``/admin/projects/{id}/agreement``)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import update

from app.db.models import Judgment, Prompt
from app.services import projects
from tests.helpers.judged import hand_project, prompt, ranking, seed_project
from tests.helpers.pages import csrf_of, login

HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(client, make_user):
    """The test client logged in as an admin (session cookie)."""
    make_user("admin", "root")
    assert login(client, "root").status_code == 303
    return client


def page_of(client, project_id: int, **params):
    response = client.get(f"/admin/projects/{project_id}/agreement", params=params)
    assert response.status_code == 200, response.text
    return response.text


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">\s*<b>([^<]+)</b>', html)
    assert match, name
    return match.group(1)


def test_dashboard_shows_figures_labelers_kappa_and_chart_data(admin_client, db):
    project = seed_project(db, hand_project())
    html = page_of(admin_client, project.id)
    assert figure(html, "alpha_nominal") == f"{1 - (10 / 46) / (986 / 2070):.3f}"
    assert figure(html, "pairwise_agreement") == f"{18 / 23:.3f}"
    assert figure(html, "mean_kendall_w") == "0.750"
    assert "21 prompts · 42 judgments" in html
    labelers = html[html.index('<table id="labelers">') :]
    assert re.search(r"<td>ext:x</td><td>21</td><td>78.3 %</td>\s*<td>100.0 %</td>", labelers)
    heatmap = html[html.index('<table class="heatmap" id="kappa">') :]
    assert heatmap.count(f">{132 / 247:.2f}</td>") == 2
    chart = json.loads(re.search(r'id="agreement-data">(.*?)</script>', html).group(1))
    assert [f["value"] for f in chart["figures"]][2] == pytest.approx(18 / 23, abs=1e-4)
    assert [entry["labeler"] for entry in chart["labelers"]] == ["ext:x", "ext:y"]
    assert "/static/vendor/chart-4.5.1.umd.min.js" in html and "/static/js/agreement.js" in html


def test_disagreements_lowest_first_and_paged_with_htmx(admin_client, db):
    project = seed_project(db, hand_project())
    html = page_of(admin_client, project.id)
    listing = html[html.index('<div id="disagreements">') :]
    ids = re.findall(r'hx-target="#detail-\d+" hx-swap="innerHTML">([^<]+)</a>', listing)
    assert ids[:5] == ["t16", "t17", "t18", "t19", "w"]  # agreement 0, 0, 0, 0, then 2/3
    assert len(ids) == 20 and "page 1 of 2" in listing
    url = f"/admin/projects/{project.id}/agreement/disagreements?page=2"
    fragment = admin_client.get(url, headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="disagreements">')
    assert "<html" not in fragment.text and "page 2 of 2" in fragment.text
    assert re.findall(r'hx-swap="innerHTML">([^<]+)</a>', fragment.text) == ["t15"]
    plain = admin_client.get(url)
    assert plain.status_code == 200 and "<html" in plain.text and "page 2 of 2" in plain.text


def test_prompt_judgments_side_by_side_escaped(admin_client, db, make_user):
    evil = "<script>alert(1)</script>"
    record = prompt("evil", "ab", {"x": ranking("a", "b")})
    record["completions"][0]["text"] = evil
    project = seed_project(db, [record])
    stored = db.query(Prompt).filter_by(project_id=project.id).one()
    lena = make_user("labeler", "lena")
    db.add(
        Judgment(
            project_id=project.id,
            prompt_id=stored.id,
            labeler_id=lena.id,
            ranking=[["b"], ["a"]],
            ratings={"a": {"helpful": 2}, "b": {"helpful": 5}},
            flags={"a": ["unsafe"]},
            rationale="<b>a</b> is <i>wrong</i>",
            duration_ms=12_000,
        )
    )
    db.commit()
    url = f"/admin/projects/{project.id}/agreement/prompts/{stored.id}"
    fragment = admin_client.get(url, headers=HTMX)
    assert fragment.status_code == 200
    text = fragment.text
    assert "<html" not in text
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;a&lt;/b&gt; is &lt;i&gt;wrong&lt;/i&gt;" in text
    assert text.index("<b>ext:x</b>") < text.index("<b>lena</b>")
    assert "a &gt; b" in text and "b &gt; a" in text and "helpful 5" in text
    assert "a flagged: unsafe" in text and "12 s" in text
    assert admin_client.get(url).text.count("<html") == 1
    other = projects.create_project(db, "other")
    assert (
        admin_client.get(
            f"/admin/projects/{other.id}/agreement/prompts/{stored.id}", headers=HTMX
        ).status_code
        == 404
    )


def form_fields(html: str, **values: str) -> dict[str, str]:
    fields = {
        "csrf_token": csrf_of(html),
        "strategy": "consensus",
        "min_judgments": "1",
        "min_agreement": "0",
        "ties": "drop",
        "exclude_labelers": "",
    }
    return {**fields, **values}


def test_export_form_with_htmx_adds_the_export_and_a_toast(admin_client, db, settings):
    project = seed_project(db, hand_project())
    html = page_of(admin_client, project.id)
    url = f"/admin/projects/{project.id}/exports"
    data = form_fields(html, strategy="all", min_judgments="2", exclude_labelers="ext:y, nobody")
    response = admin_client.post(url, data=data, headers=HTMX)
    assert response.status_code == 200, response.text
    assert response.text.lstrip().startswith('<div id="exports">')
    export_id = int(re.search(r"<td>#(\d+)</td>", response.text).group(1))
    assert f'href="/api/v1/exports/{export_id}/pairs.jsonl"' in response.text
    assert "without ext:y, nobody" in response.text
    toast = json.loads(response.headers["HX-Trigger"])["prefloop:toast"]
    assert toast["level"] == "ok"
    assert toast["message"] == f"Export {export_id} created: 0 pairs from 0 prompts"
    download = admin_client.get(f"/api/v1/exports/{export_id}/manifest.json")
    assert download.status_code == 200 and download.json()["strategy"] == "all"
    assert (settings.exports_dir / str(export_id) / "pairs.jsonl").exists()


def test_export_form_without_javascript_redirects(admin_client, db):
    project = seed_project(db, hand_project())
    html = page_of(admin_client, project.id)
    response = admin_client.post(
        f"/admin/projects/{project.id}/exports",
        data=form_fields(html, include_gold="on"),
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/projects/{project.id}/agreement#exports"
    listed = page_of(admin_client, project.id)
    assert "with gold" in listed and ">17</td><td>17</td><td>34</td>" not in listed
    assert re.search(r"<td>18</td><td>17</td><td>34</td>", listed)


def test_export_form_errors_name_the_fields_and_keep_the_values(admin_client, db):
    project = seed_project(db, hand_project())
    html = page_of(admin_client, project.id)
    url = f"/admin/projects/{project.id}/exports"
    bad = form_fields(html, min_judgments="many", ties="maybe")
    response = admin_client.post(url, data=bad, headers=HTMX)
    assert response.status_code == 422
    assert "<li>min_judgments: must be a non-negative integer</li>" in response.text
    assert "<li>ties: must be one of drop, keep</li>" in response.text
    assert 'value="many"' in response.text and "No exports yet." in response.text
    plain = admin_client.post(url, data=form_fields(html, strategy="everything"))
    assert plain.status_code == 422 and "<html" in plain.text
    assert "strategy: must be one of consensus, all, best_vs_rest, best_vs_worst" in plain.text
    no_csrf = admin_client.post(url, data={k: v for k, v in bad.items() if k != "csrf_token"})
    assert no_csrf.status_code == 403


def test_adaptive_overlap_progress(admin_client, db):
    crowd = {name: ranking("a", "b") for name in ("q", "r", "s")}
    records = [
        prompt("five", "ab", crowd | {"t": ranking("b", "a"), "u": ranking("a", "b")}),
        prompt("three", "ab", crowd),
        prompt("two", "ab", {"q": ranking("a", "b")}),
    ]
    project = seed_project(db, records, adaptive={"max_labels": 5, "min_agreement": 0.8})
    db.execute(
        update(Prompt)
        .where(Prompt.project_id == project.id, Prompt.external_id == "three")
        .values(target_labels=4)
    )
    db.commit()
    html = page_of(admin_client, project.id)
    assert "adaptive overlap asks up to 5 labelers" in html and "below 0.80" in html
    overlap = html[html.index('<div class="figures" id="overlap">') :]
    numbers = re.findall(r"<b>(\d+)</b>", overlap)[:4]
    assert numbers == ["2", "2", "1", "2"]  # reached k, raised, waiting, beyond k


def test_labeler_gets_403_on_every_dashboard_route(client, db, make_user):
    project = seed_project(db, hand_project())
    labeler = make_user("labeler", "lena")
    projects.add_member(db, project, "lena")
    assert login(client, labeler.username).status_code == 303
    base = f"/admin/projects/{project.id}"
    for path in ("/agreement", "/agreement/disagreements?page=1", "/agreement/prompts/1"):
        assert client.get(base + path).status_code == 403, path
    csrf = csrf_of(client.get("/").text)
    assert client.post(base + "/exports", data={"csrf_token": csrf}).status_code == 403


def test_dashboard_of_an_empty_project(admin_client, db):
    project = projects.create_project(db, "empty")
    html = page_of(admin_client, project.id)
    assert figure(html, "alpha_nominal") == "—"
    assert "No judgments yet." in html and "No prompt has two rankings yet." in html

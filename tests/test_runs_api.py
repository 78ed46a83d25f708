"""Training runs through the API (SPEC §7, §10): create with validation, list, detail, cancel,
retry, artifacts, roles."""

from __future__ import annotations

import json

import pytest

from app.db.models import Export, RunMetric
from app.services.runs import queue as runs_queue
from tests.factories import make_project, make_prompts
from tests.helpers.runs import finished_run, make_export
from training.config import ConfigError, build_config

API = "/api/v1/training-runs"


@pytest.fixture
def export(db, settings) -> Export:
    return make_export(db, settings)


def test_admin_queues_a_reward_run_with_a_validated_config(client, admin_headers, export):
    body = {
        "kind": "reward",
        "export_id": export.id,
        "base_model": "some/model",
        "preset": "tiny-cpu",
        "config": {"max_steps": 7},
    }
    created = client.post(API, json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["status"], run["attempts"], run["max_attempts"]) == ("queued", 0, 3)
    assert run["config"]["max_steps"] == 7  # the override
    assert run["config"]["lora_r"] == 4  # from the preset
    assert run["project_id"] == export.project_id
    listed = client.get(API, headers=admin_headers).json()
    assert [r["id"] for r in listed] == [run["id"]]
    assert client.get(f"{API}?status=running", headers=admin_headers).json() == []
    detail = client.get(f"{API}/{run['id']}", headers=admin_headers).json()
    assert detail["metrics"] == [] and detail["files"] == [] and detail["duration_seconds"] is None


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"config": {"max_steps": 0}}, "config.max_steps"),
        ({"config": {"learning_rate": "fast"}}, "config.learning_rate"),
        ({"config": {"no_such_field": 1}}, "config.no_such_field"),
        ({"preset": "huge"}, "preset"),
        ({"kind": "sft"}, "kind"),
        ({"base_model": ""}, "base_model"),
        ({"export_id": None}, "export_id"),
        ({"export_id": 999_999}, "export_id"),
    ],
)
def test_bad_run_requests_are_422_naming_the_field(client, admin_headers, export, patch, field):
    body = {"kind": "dpo", "export_id": export.id, "base_model": "m", **patch}
    response = client.post(API, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert field in fields


def test_export_without_files_is_refused(client, admin_headers, db):
    export = Export(
        project_id=make_project(db).id, strategy="consensus", filters={}, manifest={}, path="/gone"
    )
    db.add(export)
    db.commit()
    body = {"kind": "reward", "export_id": export.id, "base_model": "m"}
    response = client.post(API, json=body, headers=admin_headers)
    assert response.status_code == 422
    assert "no files" in response.json()["error"]["details"][0]["message"]


def test_ppo_needs_a_succeeded_reward_run(client, admin_headers, db, export):
    body = {"kind": "ppo", "export_id": export.id, "base_model": "policy"}
    missing = client.post(API, json=body, headers=admin_headers)
    assert missing.json()["error"]["details"][0]["field"] == "parent_run_id"
    for parent in (finished_run(db, "reward", "running"), finished_run(db, "dpo")):
        refused = client.post(API, json={**body, "parent_run_id": parent.id}, headers=admin_headers)
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["field"] == "parent_run_id"
    reward = finished_run(db, "reward")
    created = client.post(API, json={**body, "parent_run_id": reward.id}, headers=admin_headers)
    assert created.status_code == 201 and created.json()["parent_run_id"] == reward.id


def test_generate_from_a_policy_writes_the_project_prompt_set(client, admin_headers, db, settings):
    project = make_project(db)
    make_prompts(db, project, 3, prompt=[{"role": "user", "content": "hi <b>there</b>"}])
    dpo = finished_run(db, "dpo")
    body = {
        "kind": "generate",
        "parent_run_id": dpo.id,
        "project_id": project.id,
        "config": {"mix_base": True, "n": 1},
    }
    created = client.post(API, json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["base_model"] == "tiny-base"  # the parent's base, for its adapter
    assert run["project_id"] == project.id
    prompts_file = settings.data_dir / "runs" / str(run["id"]) / "inputs" / "prompts.jsonl"
    rows = [json.loads(line) for line in prompts_file.read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["prompt"][0]["content"] == "hi <b>there</b>"
    assert rows[0]["id"].startswith("p-")
    files = client.get(f"{API}/{run['id']}", headers=admin_headers).json()["files"]
    assert [f["path"] for f in files] == ["inputs/prompts.jsonl"]


def test_generate_needs_exactly_one_prompt_set_and_its_parents_base(
    client, admin_headers, db, export
):
    dpo = finished_run(db, "dpo")
    both = {
        "kind": "generate",
        "parent_run_id": dpo.id,
        "export_id": export.id,
        "project_id": export.project_id,
    }
    assert (
        client.post(API, json=both, headers=admin_headers).json()["error"]["details"][0]["field"]
        == "project_id"
    )
    other_base = {
        "kind": "generate",
        "parent_run_id": dpo.id,
        "export_id": export.id,
        "base_model": "another",
    }
    response = client.post(API, json=other_base, headers=admin_headers)
    assert response.json()["error"]["details"][0]["field"] == "base_model"
    from_export = {"kind": "generate", "parent_run_id": dpo.id, "export_id": export.id}
    created = client.post(API, json=from_export, headers=admin_headers)
    assert created.status_code == 201 and created.json()["config"]["mix_base"] is True
    base_only = {"kind": "generate", "export_id": export.id, "base_model": "m"}
    response = client.post(API, json=base_only, headers=admin_headers)
    assert response.status_code == 201 and response.json()["config"]["mix_base"] is False
    mixed = client.post(
        API, json={**base_only, "config": {"mix_base": True}}, headers=admin_headers
    )
    assert mixed.json()["error"]["details"][0]["field"] == "config.mix_base"


def test_cancel_and_retry(client, admin_headers, db, export):
    body = {"kind": "reward", "export_id": export.id, "base_model": "m"}
    run_id = client.post(API, json=body, headers=admin_headers).json()["id"]
    cancelled = client.post(f"{API}/{run_id}/cancel", headers=admin_headers)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    assert client.post(f"{API}/{run_id}/cancel", headers=admin_headers).status_code == 409
    retried = client.post(f"{API}/{run_id}/retry", headers=admin_headers)
    assert retried.status_code == 202
    assert (retried.json()["status"], retried.json()["finished_at"]) == ("queued", None)
    assert client.post(f"{API}/{run_id}/retry", headers=admin_headers).status_code == 409

    running = finished_run(db, "dpo", "running", worker="w1", attempts=1)
    asked = client.post(f"{API}/{running.id}/cancel", headers=admin_headers).json()
    assert (asked["status"], asked["cancel_requested"]) == ("running", True)
    failed = finished_run(db, "dpo", "failed", attempts=3, error="boom", log_tail="old line")
    again = client.post(f"{API}/{failed.id}/retry", headers=admin_headers).json()
    assert (again["status"], again["attempts"], again["error"]) == ("queued", 0, None)
    assert client.get(f"{API}/{failed.id}", headers=admin_headers).json()["log_tail"] == (
        "old line\n[retry] queued again"
    )


def test_detail_has_metrics_by_step_and_downloadable_files(client, admin_headers, db, settings):
    run = finished_run(db, "reward", artifact_uri="x")
    db.add_all(
        [
            RunMetric(run_id=run.id, step=s, values={"loss": 1.0 / s}, samples=None)
            for s in (1, 2, 3)
        ]
    )
    db.commit()
    folder = settings.data_dir / "runs" / str(run.id) / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 4}')
    detail = client.get(f"{API}/{run.id}", headers=admin_headers).json()
    assert [m["step"] for m in detail["metrics"]] == [1, 2, 3]
    later = client.get(f"{API}/{run.id}?after_step=2", headers=admin_headers).json()
    assert [m["step"] for m in later["metrics"]] == [3]
    assert detail["files"] == [
        {
            "path": "adapter/adapter_config.json",
            "size": 8,
            "url": f"{API}/{run.id}/files/adapter/adapter_config.json",
        }
    ]
    download = client.get(detail["files"][0]["url"], headers=admin_headers)
    assert download.status_code == 200 and download.json() == {"r": 4}
    (settings.data_dir / "secret.txt").write_text("no")
    for path in ("..%2F..%2Fsecret.txt", "adapter%2F..%2F..%2F..%2Fsecret.txt", "missing.bin"):
        refused = client.get(f"{API}/{run.id}/files/{path}", headers=admin_headers)
        assert refused.status_code == 404 and "has no file" in refused.json()["error"]["message"]


def test_labelers_get_403_everywhere(client, make_user, token_for, db, export):
    headers = token_for(make_user("labeler"))
    run = finished_run(db, "reward", "failed")
    calls = [
        ("post", API, {"kind": "reward", "export_id": export.id, "base_model": "m"}),
        ("get", API, None),
        ("get", f"{API}/{run.id}", None),
        ("post", f"{API}/{run.id}/cancel", None),
        ("post", f"{API}/{run.id}/retry", None),
        ("get", f"{API}/{run.id}/files/x", None),
    ]
    for method, url, body in calls:
        response = (
            getattr(client, method)(url, json=body, headers=headers)
            if body
            else getattr(client, method)(url, headers=headers)
        )
        assert response.status_code == 403, (method, url)
    assert client.get(API).status_code == 401


def test_a_config_error_is_reported_under_the_field_it_names():
    """``training.config.ConfigError`` carries ``.field``: no parsing of its message."""
    field_of = runs_queue.config_error_field
    with pytest.raises(ConfigError) as caught:
        build_config("ppo", overrides={"top_k": 50})
    assert field_of(caught.value) == "config.top_k"
    with pytest.raises(ConfigError) as caught:
        build_config("ppo", preset="no-such-preset")
    assert field_of(caught.value) == "preset"
    with pytest.raises(ConfigError) as caught:
        build_config("ppo", overrides={"no_such_field": 1})
    assert field_of(caught.value) == "config.no_such_field"

"""The memory plan of a run at creation: in the API's answer, a clear 422 when it fits no
registered GPU worker (with a preset that would), nothing refused on CPU-only setups, and the
run form's estimate as you type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.db.models import Export, RegisteredWorker
from tests.helpers.families import LLAMA_7B_CONFIG as LLAMA_7B
from tests.helpers.pages import csrf_of, login
from tests.helpers.runs import make_export

API = "/api/v1/training-runs"
HX = {"HX-Request": "true"}
GB = 10**9


@pytest.fixture
def export(db, settings) -> Export:
    return make_export(db, settings)


@pytest.fixture
def llama_7b(tmp_path) -> str:
    """A 7B Llama as the planner sees it: its config.json (no weights needed)."""
    folder = tmp_path / "llama-7b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_7B))
    return str(folder)


def register(db, name: str, gpus: int, memory_gb: float, hours_ago: float = 0) -> None:
    devices = [
        {"index": i, "name": "GPU", "memory_bytes": int(memory_gb * GB)} for i in range(gpus)
    ]
    seen = datetime.now(UTC) - timedelta(hours=hours_ago)
    worker = RegisteredWorker(
        name=name, devices=devices, processes=max(gpus, 1), kinds=["dpo"], seen_at=seen
    )
    db.add(worker)
    db.commit()


def dpo(export: Export, model: str, **config) -> dict:
    return {"kind": "dpo", "export_id": export.id, "base_model": model, "config": config}


def test_without_gpu_workers_nothing_is_refused_and_the_plan_is_in_the_answer(
    client, admin_headers, db, export, llama_7b
):
    register(db, "cpu-box", 0, 0)  # a CPU worker registers no devices
    created = client.post(API, json=dpo(export, llama_7b), headers=admin_headers)
    assert created.status_code == 201, created.text
    plan = created.json()["memory_plan"]
    assert plan["fits"] is None and plan["parts_gb"]["weights"] == pytest.approx(13.477)
    assert plan["per_device_gb"] > 13.5 and plan["distributed"] == "ddp"


def test_a_run_that_fits_no_gpu_worker_is_refused_with_the_figure_and_a_preset(
    client, admin_headers, db, export, llama_7b
):
    register(db, "gpu-24", 1, 24)
    register(db, "gpu-80-gone", 1, 80, hours_ago=48)  # not seen for two days: ignored
    refused = client.post(API, json=dpo(export, llama_7b), headers=admin_headers)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["error"]["details"][0]
    assert detail["field"] == "config"
    assert "needs about" in detail["message"] and "gpu-24, has 1 × 24.0 GB" in detail["message"]
    assert "preset '7b-24gb' with distributed: ddp would fit on gpu-24" in detail["message"]
    body = {**dpo(export, llama_7b), "preset": "7b-24gb"}
    created = client.post(API, json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["memory_plan"]["fits_on"] == ["gpu-24"]


def test_sharding_over_a_workers_gpus_is_what_fits(client, admin_headers, db, export, llama_7b):
    register(db, "four-16", 4, 16)
    config = {"per_device_batch_size": 1, "max_length": 512, "gradient_checkpointing": True}
    refused = client.post(API, json=dpo(export, llama_7b, **config), headers=admin_headers)
    assert refused.status_code == 422
    assert "with distributed: fsdp would fit on four-16" in refused.text
    sharded = dpo(export, llama_7b, **config, distributed="fsdp")
    created = client.post(API, json=sharded, headers=admin_headers)
    assert created.status_code == 201, created.text
    plan = created.json()["memory_plan"]
    assert (plan["processes"], plan["fits"]) == (4, True) and plan["parts_gb"]["weights"] < 3.4


def test_a_model_without_a_readable_config_has_no_plan(client, admin_headers, db, export):
    register(db, "gpu-8", 1, 8)
    created = client.post(API, json=dpo(export, "org/not-downloaded"), headers=admin_headers)
    assert created.status_code == 201 and created.json()["memory_plan"] is None


def test_the_run_form_shows_the_estimate_as_you_type(client, make_user, db, llama_7b):
    register(db, "gpu-24", 1, 24)
    make_user("admin", "boss")
    login(client, "boss")
    runs_page = client.get("/admin/runs")
    assert 'hx-post="/admin/runs/plan"' in runs_page.text
    form = {"kind": "dpo", "base_model": llama_7b, "csrf_token": csrf_of(runs_page.text)}
    page = client.post("/admin/runs/plan", data=form, headers=HX)
    assert page.status_code == 200
    assert "does not fit any registered GPU worker" in page.text and "7b-24gb" in page.text
    fits = client.post("/admin/runs/plan", data={**form, "preset": "7b-24gb"}, headers=HX)
    assert "GB per GPU" in fits.text and "It fits on gpu-24" in fits.text
    typing = client.post("/admin/runs/plan", data={**form, "config": '{"lora_r": '}, headers=HX)
    assert typing.status_code == 200 and "not a JSON object yet" in typing.text
    bad = client.post("/admin/runs/plan", data={**form, "config": '{"lora_r": 0}'}, headers=HX)
    assert "lora_r must be &gt;= 1" in bad.text

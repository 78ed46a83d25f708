"""The whole loop on tiny models, through the API and a `prefloop worker` process only:
import → judgments → export → reward run → PPO run → generate run → a new labeling project with
completions from the trained policy and from its base → labeled → policy vs base."""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.db.models import Completion, Prompt
from app.main import create_app
from app.services.accounts import tokens, users
from app.settings import Settings
from tests.conftest import PASSWORD
from tests.helpers.worker import worker_env, worker_process
from tests.training.conftest import MARKER, WORDS, build_tiny_llama

RUNS = "/api/v1/training-runs"


def prompt_rows(n: int, seed: int = 0) -> list[dict]:
    """SPEC §3 rows in the tiny model's vocabulary; the completion holding MARKER is best."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [" ".join(rng.sample(WORDS, 4)) for _ in range(3)]
        rows.append(
            {
                "id": f"q{i}",
                "prompt": [{"role": "user", "content": f"tell me about {rng.choice(WORDS)}"}],
                "completions": [
                    {"id": "a", "text": f"{MARKER} {words[0]}", "model": "seed"},
                    {"id": "b", "text": words[1], "model": "seed"},
                    {"id": "c", "text": words[2], "model": "seed"},
                ],
            }
        )
    return rows


def label_everything(client: TestClient, project_id: int, headers: dict[str, str]) -> int:
    """Rank every task the labeler gets: the completion with MARKER first, the rest tied."""
    done = 0
    while (
        task := client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
    ).status_code == 200:
        body = task.json()
        best = [c["id"] for c in body["completions"] if MARKER in c["text"].split()][:1]
        rest = [c["id"] for c in body["completions"] if c["id"] not in best]
        ranking = [best, rest] if best else [[c["id"] for c in body["completions"]]]
        answer = client.post(
            f"/api/v1/assignments/{body['assignment_id']}/judgment",
            json={"ranking": ranking, "duration_ms": 1000},
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        done += 1
    assert task.status_code == 204
    return done


def finish(client: TestClient, headers: dict[str, str], body: dict, timeout: float = 240) -> dict:
    created = client.post(RUNS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + timeout
    while (run := client.get(f"{RUNS}/{created.json()['id']}", headers=headers).json())[
        "status"
    ] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"run {run['id']} still {run['status']}"
        time.sleep(0.3)
    assert run["status"] == "succeeded", f"{run['error']}\n{run['log_tail']}"
    return run


@pytest.fixture
def world(databases, tmp_path) -> Iterator[tuple[TestClient, dict, list[dict], Settings]]:
    url = databases.new()
    settings = Settings(
        database_url=url,
        data_dir=tmp_path / "data",
        environment="test",
        secret_key="test-secret-key-0123456789",
    )
    engine = create_engine(url)
    with Session(engine) as session:
        users.create_user(session, "root", PASSWORD, "admin")
        admin = {"Authorization": f"Bearer {tokens.create_token(session, 'root')}"}
        labelers = []
        for name in ("ann", "bob"):
            users.create_user(session, name, PASSWORD, "labeler")
            labelers.append({"Authorization": f"Bearer {tokens.create_token(session, name)}"})
    engine.dispose()
    with TestClient(create_app(settings)) as client:
        yield client, admin, labelers, settings


@pytest.mark.timeout(600)
def test_the_whole_loop_through_the_api_and_a_worker(world, tmp_path):
    client, admin, labelers, settings = world
    model = str(build_tiny_llama(tmp_path / "tiny-llama"))
    project = client.post(
        "/api/v1/projects",
        headers=admin,
        json={"name": "round one", "settings": {"labels_per_prompt": 2}},
    ).json()
    for name in ("ann", "bob"):
        assert (
            client.post(
                f"/api/v1/projects/{project['id']}/members", headers=admin, json={"username": name}
            ).status_code
            == 204
        )
    body = "".join(json.dumps(r) + "\n" for r in prompt_rows(8))
    imported = client.post(
        f"/api/v1/projects/{project['id']}/import",
        content=body,
        headers={**admin, "Content-Type": "application/x-ndjson"},
    )
    assert imported.json() == {"imported": 8, "skipped": 0}
    assert [label_everything(client, project["id"], h) for h in labelers] == [8, 8]
    export = client.post(
        f"/api/v1/projects/{project['id']}/exports", headers=admin, json={"strategy": "consensus"}
    ).json()
    assert export["manifest"]["counts"]["pairs"] > 0

    env = worker_env(settings.database_url, settings.data_dir)
    with worker_process("loop", env, tmp_path / "worker.log") as worker:
        reward = finish(
            client,
            admin,
            {
                "kind": "reward",
                "export_id": export["id"],
                "base_model": model,
                "preset": "tiny-cpu",
            },
        )
        ppo = finish(
            client,
            admin,
            {
                "kind": "ppo",
                "export_id": export["id"],
                "base_model": model,
                "preset": "tiny-cpu",
                "parent_run_id": reward["id"],
                "config": {"max_steps": 2},
            },
        )
        generate = finish(
            client,
            admin,
            {
                "kind": "generate",
                "parent_run_id": ppo["id"],
                "project_id": project["id"],
                "preset": "tiny-cpu",
            },
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0

    assert reward["metrics"] and any("loss" in m["values"] for m in reward["metrics"])
    assert any("kl" in m["values"] and "reward" in m["values"] for m in ppo["metrics"])
    assert any(m["samples"] for m in ppo["metrics"])
    assert {"adapter/adapter_config.json", "completions.jsonl"} & {
        f["path"] for f in generate["files"]
    } == {"completions.jsonl"}
    round_id = generate["result_project_id"]
    assert round_id is not None and round_id != project["id"]
    engine = create_engine(settings.database_url)
    with Session(engine) as session:
        models = session.execute(
            select(Prompt.external_id, Completion.model)
            .join(Completion, Completion.prompt_id == Prompt.id)
            .where(Prompt.project_id == round_id)
        ).all()
    engine.dispose()
    assert len({pid for pid, _ in models}) == 8 and len(models) == 8 * 4  # n=2 from each model
    assert {m for _, m in models} == {model, f"{model}+{ppo['id']}"}

    assert [label_everything(client, round_id, h) for h in labelers] == [8, 8]  # members copied
    comparison = client.get(f"{RUNS}/{generate['id']}/comparison", headers=admin).json()
    head = comparison["head_to_head"]
    assert (head["model"], head["against"]) == (f"{model}+{ppo['id']}", model)
    assert head["wins"] + head["losses"] + head["ties"] == 2 * 8 * 4  # 2 labelers x 8 x 2x2
    assert 0.0 <= head["win_rate"] <= 1.0 and len(head["win_rate_ci"]) == 2

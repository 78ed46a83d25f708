"""Suspected mislabels (issue 12 §4) end to end on a real database and a tiny model: a
project whose labelers agree on a separable task except for judgments flipped on purpose,
an export with strategy ``all``, a suspects run executed by the worker in-process, then the
API (ranking, access, bad ids), the review decisions and the agreement's flagged counts."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from app.db.models import Prompt, SuspectReview, TrainingRun
from app.main import create_app
from app.services import exports, importing, projects
from app.services.accounts import tokens, users
from app.services.runs import queue as runs
from app.settings import Settings
from tests.conftest import PASSWORD
from tests.helpers.pages import csrf_of, login
from tests.training.conftest import MARKER, WORDS, build_tiny_llama
from training.worker import Worker

RUNS = "/api/v1/training-runs"
N_PROMPTS, N_FLIPPED = 60, 12
LABELERS = ("ext:x", "ext:y")
FAST = {
    "folds": 2,
    "max_steps": 40,
    "logging_steps": 10,
    "per_device_batch_size": 8,
    "learning_rate": 3e-3,
    "lora_r": 8,
    "lora_alpha": 16,
    "precision": "fp32",
}


def _sentence(rng: random.Random, marker: bool) -> str:
    words = rng.sample(WORDS, rng.randint(3, 6))
    if marker:
        words.insert(rng.randrange(len(words) + 1), MARKER)
    return " ".join(words)


def flipped_records(seed: int = 0) -> tuple[list[dict], set[tuple[str, str]]]:
    """Two-completion prompts, the one holding MARKER is better; both labelers say so except
    for ``N_FLIPPED`` judgments ``(prompt id, labeler)`` flipped on purpose."""
    rng = random.Random(seed)
    keys = [(f"q{n:02d}", name) for n in range(N_PROMPTS) for name in LABELERS]
    flipped = set(rng.sample(keys, N_FLIPPED))
    records = []
    for n in range(N_PROMPTS):
        pid, good = f"q{n:02d}", rng.choice("ab")
        bad = "b" if good == "a" else "a"
        judgments = [
            {
                "labeler": name,
                "ranking": [[bad], [good]] if (pid, name) in flipped else [[good], [bad]],
            }
            for name in LABELERS
        ]
        texts = {good: _sentence(rng, True), bad: _sentence(rng, False)}
        records.append(
            {
                "id": pid,
                "prompt": f"tell me about {rng.choice(WORDS)} {rng.choice(WORDS)} .",
                "completions": [{"id": c, "text": texts[c]} for c in "ab"],
                "judgments": judgments,
            }
        )
    return records, flipped


class World:
    """The committed database, its settings, the run, the flipped judgments, and clients."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.project_id = self.run_id = self.reward_run_id = 0
        self.flipped: set[tuple[str, str]] = set()
        self.admin: dict[str, str] = {}
        self.labeler: dict[str, str] = {}


@pytest.fixture(scope="module")
def world(databases, tmp_path_factory) -> Iterator[World]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster on shared cores
    try:
        yield from _world(databases, tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def _world(databases, tmp_path_factory) -> Iterator[World]:
    url = databases.new()
    settings = Settings(
        database_url=url,
        data_dir=tmp_path_factory.mktemp("data"),
        environment="test",
        secret_key="test-secret-key-0123456789",
    )
    engine = create_engine(url)
    world = World(engine, settings)
    model = str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))
    records, world.flipped = flipped_records()
    with Session(engine) as session:
        admin = users.create_user(session, "root", PASSWORD, "admin")
        world.admin = {"Authorization": f"Bearer {tokens.create_token(session, 'root')}"}
        users.create_user(session, "carol", PASSWORD, "labeler")
        world.labeler = {"Authorization": f"Bearer {tokens.create_token(session, 'carol')}"}
        project = projects.create_project(session, "flips", {"labels_per_prompt": 2})
        body = "".join(json.dumps(r) + "\n" for r in records).encode()
        importing.import_file(session, project, io.BytesIO(body), "jsonl")
        projects.add_member(session, project, "carol")
        export = exports.create_export(session, settings, project, "all", None, created_by=admin)
        world.project_id = project.id
        request = runs.RunRequest(
            kind="suspects", export_id=export.id, base_model=model, config=FAST
        )
        world.run_id = runs.create_run(session, settings, request).id
        reward = TrainingRun(kind="reward", status="succeeded", base_model=model, config={})
        session.add(reward)
        session.commit()
        world.reward_run_id = reward.id
    worker = Worker(engine, name="test", data_dir=settings.data_dir, poll_seconds=0.1)
    assert worker.run_forever(once=True) == 1
    yield world
    engine.dispose()


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings)) as client:
        yield client


def suspects_of(client: TestClient, world: World) -> list[dict]:
    answer = client.get(f"{RUNS}/{world.run_id}/suspects", headers=world.admin)
    assert answer.status_code == 200, answer.text
    return answer.json()["suspects"]


def test_flipped_judgments_rank_at_the_top(world, client):
    with Session(world.engine) as session:
        run = session.get(TrainingRun, world.run_id)
        assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    body = client.get(f"{RUNS}/{world.run_id}/suspects", headers=world.admin).json()
    listed = body["suspects"]
    assert len(listed) >= 10
    top = [(s["prompt_external_id"], s["labeler"]) for s in listed[:10]]
    precision = sum(key in world.flipped for key in top) / 10
    assert precision >= 0.8, (precision, top, sorted(world.flipped))
    confidences = [s["confidence"] for s in listed]
    assert confidences == sorted(confidences, reverse=True)
    first = listed[0]
    assert first["score_margin"] < 0 and first["confidence"] >= body["calibration_threshold"]
    assert MARKER in first["rejected"]["text"] and MARKER not in first["chosen"]["text"]
    assert first["rank"] == 1 and first["labeler"] in LABELERS


def test_sending_a_prompt_back_makes_it_assignable_again(world, client):
    top = suspects_of(client, world)[0]
    tasks = f"/api/v1/projects/{world.project_id}/tasks/next"
    assert client.get(tasks, headers=world.labeler).status_code == 204  # every prompt is full
    review = client.post(
        f"{RUNS}/{world.run_id}/suspects/{top['judgment_id']}/review",
        json={"decision": "sent_back"},
        headers=world.admin,
    )
    assert review.status_code == 201, review.text
    with Session(world.engine) as session:
        prompt = session.get(Prompt, top["prompt_id"])
        assert prompt.target_labels == top["target_labels"] + 1
    task = client.get(tasks, headers=world.labeler)
    assert task.status_code == 200
    assert task.json()["prompt"] == prompt.prompt
    assert top["judgment_id"] not in [s["judgment_id"] for s in suspects_of(client, world)]
    again = client.post(
        f"{RUNS}/{world.run_id}/suspects/{top['judgment_id']}/review",
        json={"decision": "accepted"},
        headers=world.admin,
    )
    assert again.status_code == 409


def test_accepting_hides_the_judgment_and_is_persisted(world, client):
    target = suspects_of(client, world)[0]
    answer = client.post(
        f"{RUNS}/{world.run_id}/suspects/{target['judgment_id']}/review",
        json={"decision": "accepted"},
        headers=world.admin,
    )
    assert answer.status_code == 201
    assert target["judgment_id"] not in [s["judgment_id"] for s in suspects_of(client, world)]
    with Session(world.engine) as session:
        stored = session.scalar(
            select(SuspectReview).where(SuspectReview.judgment_id == target["judgment_id"])
        )
        assert (stored.decision, stored.run_id) == ("accepted", world.run_id)
        assert session.get(Prompt, target["prompt_id"]).target_labels == target["target_labels"]


def test_labelers_and_bad_ids_are_refused(world, client):
    path = f"{RUNS}/{world.run_id}/suspects"
    assert client.get(path, headers=world.labeler).status_code == 403
    assert client.get(path).status_code == 401
    one = suspects_of(client, world)[0]
    review = f"{path}/{one['judgment_id']}/review"
    assert (
        client.post(review, json={"decision": "accepted"}, headers=world.labeler).status_code == 403
    )
    assert client.get(f"{RUNS}/999999/suspects", headers=world.admin).status_code == 404
    assert (
        client.get(f"{RUNS}/{world.reward_run_id}/suspects", headers=world.admin).status_code == 404
    )
    for bad in ("0", "abc", str(2**63)):
        assert client.get(f"{RUNS}/{bad}/suspects", headers=world.admin).status_code == 422
    assert (
        client.post(
            f"{path}/0/review", json={"decision": "accepted"}, headers=world.admin
        ).status_code
        == 422
    )
    missing = client.post(
        f"{path}/999999/review", json={"decision": "accepted"}, headers=world.admin
    )
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = client.post(review, json={"decision": "maybe"}, headers=world.admin)
    assert wrong.status_code == 422 and "decision" in wrong.text
    assert client.get(path, params={"limit": 0}, headers=world.admin).status_code == 422


def test_agreement_counts_flagged_judgments_per_labeler(world, client):
    report = client.get(
        f"/api/v1/projects/{world.project_id}/agreement", headers=world.admin
    ).json()
    assert report["suspects_run_id"] == world.run_id
    flagged = {e["labeler"]: e["flagged"] for e in report["per_labeler"]}
    assert set(flagged) == set(LABELERS)
    path = world.settings.data_dir / "runs" / str(world.run_id) / "suspects.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    expected = {
        name: len({x["prompt_id"] for x in lines if x["flagged"] and x["labeler"] == name})
        for name in LABELERS
    }
    assert flagged == expected and sum(flagged.values()) >= 10
    assert all("agreement" in e and "kappa" in e for e in report["per_labeler"])


def test_review_page_lists_and_decides_with_htmx(world, client):
    with TestClient(create_app(world.settings)) as browser:
        assert login(browser, "root").status_code == 303
        run_page = browser.get(f"/admin/runs/{world.run_id}").text
        assert f'href="/admin/runs/{world.run_id}/suspects"' in run_page
        page = browser.get(f"/admin/runs/{world.run_id}/suspects")
        assert page.status_code == 200 and "Review suspected mislabels" in page.text
        first = suspects_of(client, world)[0]
        assert f'id="suspect-{first["judgment_id"]}"' in page.text
        answer = browser.post(
            f"/admin/runs/{world.run_id}/suspects/{first['judgment_id']}",
            data={"decision": "accepted", "csrf_token": csrf_of(page.text)},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200 and answer.text == ""
        assert "prefloop:toast" in answer.headers["HX-Trigger"]
        after = browser.get(f"/admin/runs/{world.run_id}/suspects").text
        assert f'id="suspect-{first["judgment_id"]}"' not in after
        agreement = browser.get(f"/admin/projects/{world.project_id}/agreement").text
        assert f'href="/admin/runs/{world.run_id}/suspects">Flagged' in agreement


def test_a_suspects_run_needs_an_export_with_strategy_all(world, client):
    export = client.post(
        f"/api/v1/projects/{world.project_id}/exports",
        json={"strategy": "consensus"},
        headers=world.admin,
    )
    assert export.status_code == 201, export.text
    answer = client.post(
        RUNS,
        json={"kind": "suspects", "export_id": export.json()["id"], "base_model": "m"},
        headers=world.admin,
    )
    assert answer.status_code == 422
    fields = {d["field"]: d["message"] for d in answer.json()["error"]["details"]}
    assert "strategy 'all'" in fields["export_id"]
    folds = client.post(
        RUNS,
        json={
            "kind": "suspects",
            "export_id": export.json()["id"],
            "base_model": "m",
            "config": {"folds": 1},
        },
        headers=world.admin,
    )
    assert "config.folds" in {d["field"] for d in folds.json()["error"]["details"]}


def test_a_run_that_has_not_succeeded_has_no_suspects_yet(world, client):
    with Session(world.engine) as session:
        queued = TrainingRun(
            kind="suspects", status="queued", base_model="m", config={}, project_id=world.project_id
        )
        session.add(queued)
        session.commit()
        run_id = queued.id
    answer = client.get(f"{RUNS}/{run_id}/suspects", headers=world.admin)
    assert answer.status_code == 409 and "queued" in answer.json()["error"]["message"]
    report = client.get(f"/api/v1/projects/{world.project_id}/agreement", headers=world.admin)
    assert report.json()["suspects_run_id"] == world.run_id  # the newest *succeeded* run

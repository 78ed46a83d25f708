"""An admin reviews suspected mislabels in a real browser: from the run page to the list,
"Accept as is" and "Send back for more labels" remove their judgment in place (htmx)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.db.models import Prompt, SuspectReview, TrainingRun
from app.services.accounts import users
from tests.conftest import PASSWORD
from tests.helpers.judged import A_B, B_A, prompt, seed_project
from tests.helpers.live import LiveServer, start_server
from training.queue import RunPaths

pytestmark = pytest.mark.browser


def flagged(rank: int, pid: str, labeler: str, chosen: str, rejected: str, p: float) -> dict:
    """One line of a suspects run's output (training.suspects writes these)."""
    margin = -2.0 if p < 0.5 else 2.0
    return {
        "rank": rank,
        "flagged": True,
        "prompt_id": pid,
        "labeler": labeler,
        "chosen_id": chosen,
        "rejected_id": rejected,
        "fold": 0,
        "chosen_score": 0.0,
        "rejected_score": -margin,
        "score_margin": margin,
        "p_labeled": p,
    }


@pytest.fixture
def stack(databases, tmp_path) -> Iterator[tuple[LiveServer, int, str]]:
    url, data_dir = databases.new(), tmp_path / "data"
    engine = create_engine(url)
    with Session(engine) as session:
        users.create_user(session, "root", PASSWORD, "admin")
        records = [
            prompt("p1", "ab", {"x": B_A, "y": A_B}),
            prompt("p2", "ab", {"x": A_B, "y": B_A}),
        ]
        project = seed_project(session, records, labels_per_prompt=2)
        run = TrainingRun(
            kind="suspects",
            status="succeeded",
            base_model="tiny",
            config={},
            project_id=project.id,
        )
        session.add(run)
        session.commit()
        run_id = run.id
    engine.dispose()
    folder = RunPaths(data_dir).run_dir(run_id)
    folder.mkdir(parents=True)
    lines = [flagged(1, "p1", "ext:x", "b", "a", 0.04), flagged(2, "p2", "ext:y", "b", "a", 0.1)]
    (folder / "suspects.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with start_server(url, env={"DATA_DIR": str(data_dir)}) as server:
        yield server, run_id, url


@pytest.mark.timeout(120)
def test_admin_accepts_one_suspect_and_sends_another_back(page, stack):
    server, run_id, url = stack
    page.goto(f"{server.url}/login")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/admin/runs/{run_id}")
    page.click("#review-suspects")
    page.wait_for_url(f"{server.url}/admin/runs/{run_id}/suspects")
    cards = page.locator("article.suspect")
    assert cards.count() == 2
    first = cards.nth(0)
    assert "ext:x on prompt p1" in first.inner_text()
    assert "answer b of p1" in first.locator(".suspect-pair").inner_text()
    first.locator("button[data-decision=accepted]").click()
    page.wait_for_function("document.querySelectorAll('article.suspect').length === 1")
    assert "accepted as is" in page.locator(".toast").first.inner_text()  # in place, no reload
    page.locator("button[data-decision=sent_back]").click()
    page.wait_for_function("document.querySelectorAll('article.suspect').length === 0")
    page.reload()
    assert page.locator("#no-suspects").is_visible()
    engine = create_engine(url)
    with Session(engine) as session:
        targets = dict(session.execute(select(Prompt.external_id, Prompt.target_labels)).all())
        assert targets == {"p1": 2, "p2": 3}
        assert sorted(session.scalars(select(SuspectReview.decision))) == ["accepted", "sent_back"]
    engine.dispose()

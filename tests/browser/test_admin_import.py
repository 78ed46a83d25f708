"""The admin project page in a real browser: an upload with an error shows the line
and field in place (htmx swaps the 422), nothing is written, and a good upload updates
the counts and the progress block."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.db.models import Prompt
from app.services.accounts import users
from tests.conftest import PASSWORD
from tests.factories import make_project

pytestmark = pytest.mark.browser


@dataclass
class Seeded:
    url: str
    project_id: int
    session: Session


@pytest.fixture
def seeded(live_server) -> Iterator[Seeded]:
    engine = create_engine(live_server.database_url)
    with Session(engine, expire_on_commit=False) as session:
        users.create_user(session, "root", PASSWORD, "admin")
        project = make_project(session, k=2, name="Browser import", status="draft")
        yield Seeded(live_server.url, project.id, session)
    engine.dispose()


def write(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def record(pid: str, n: int = 2) -> dict:
    return {
        "id": pid,
        "prompt": f"Question {pid}?",
        "completions": [{"id": f"c{i}", "text": f"Answer {i}"} for i in range(n)],
    }


def prompts_in_db(seeded: Seeded) -> int:
    seeded.session.rollback()
    return seeded.session.scalar(select(func.count()).select_from(Prompt))


def test_upload_with_an_error_shows_its_line_then_a_good_one_imports(page, seeded, tmp_path):
    page.goto(f"{seeded.url}/login?next=/admin/projects/{seeded.project_id}")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{seeded.url}/admin/projects/{seeded.project_id}")

    bad = write(tmp_path / "bad.jsonl", record("p1"), record("p2", n=1), record("p1"))
    page.set_input_files("#import-file", str(bad))
    page.select_option("#import-format", "jsonl")
    page.click("#import-form button[type=submit]")
    rows = page.locator("#import-result table.import-errors tbody tr")
    rows.first.wait_for()
    assert [rows.nth(i).inner_text().split("\t")[:2] for i in range(rows.count())] == [
        ["2", "completions"],
        ["3", "id"],
    ]
    assert "Nothing was imported" in page.inner_text("#import-result")
    assert page.url.endswith(f"/admin/projects/{seeded.project_id}")  # swapped in place
    assert prompts_in_db(seeded) == 0

    good = write(tmp_path / "good.jsonl", record("p1"), record("p2", n=3))
    page.set_input_files("#import-file", str(good))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-result .ok")
    assert "Imported 2 prompts" in page.inner_text("#import-result")
    assert page.locator("#import-result table").count() == 0
    # The progress block reloads on the import event: 2 pending prompts.
    page.wait_for_function(
        "() => document.querySelector('#progress .figures b').textContent.trim() === '2'"
    )
    assert prompts_in_db(seeded) == 2

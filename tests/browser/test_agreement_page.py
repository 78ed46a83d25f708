"""The agreement dashboard in a real browser: charts drawn, a disagreement opens its
judgments in place (completions escaped), the list pages with htmx, and the export form
shows its errors in place, then creates an export whose pairs can be downloaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.services.accounts import users
from tests.conftest import PASSWORD
from tests.helpers.judged import hand_project, seed_project

pytestmark = pytest.mark.browser
EVIL = '<img src=x onerror="window.pwned=1">'


@dataclass
class Seeded:
    url: str
    project_id: int


@pytest.fixture
def seeded(live_server) -> Iterator[Seeded]:
    records = hand_project()
    records[16]["completions"][0]["text"] = EVIL  # t16: the first disagreement listed
    engine = create_engine(live_server.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            users.create_user(session, "root", PASSWORD, "admin")
            project = seed_project(session, records, name="Browser agreement")
        yield Seeded(live_server.url, project.id)
    finally:
        engine.dispose()


def open_dashboard(page, seeded: Seeded) -> None:
    page.goto(f"{seeded.url}/login?next=/admin/projects/{seeded.project_id}/agreement")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**/admin/projects/{seeded.project_id}/agreement")


def test_charts_and_disagreements(page, seeded):
    open_dashboard(page, seeded)
    page.wait_for_function("() => window.Chart && Chart.getChart('figures-chart')")
    drawn = page.evaluate("() => Chart.getChart('figures-chart').data.datasets[1].data")
    assert drawn[2] == pytest.approx(18 / 23, abs=1e-3)
    assert page.evaluate("() => !!Chart.getChart('labelers-chart')")
    first = page.locator("#disagreements li").first
    first.locator("a").click()
    detail = first.locator(".prompt-detail")
    detail.wait_for()
    assert detail.locator(".judgment").count() == 2
    assert EVIL in detail.locator(".completion pre").first.inner_text()
    assert detail.locator("img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    page.click("#disagreements .pager a")
    page.wait_for_selector("#disagreements >> text=page 2 of 2")
    assert page.locator("#disagreements li").count() == 1


def test_export_form_errors_then_export_and_download(page, seeded):
    open_dashboard(page, seeded)
    page.fill("input[name=min_agreement]", "2")
    page.click(".export-form button[type=submit]")
    page.wait_for_selector(".export-form .errors")
    assert "min_agreement: must be a number between 0 and 1" in page.inner_text(".export-form")
    assert page.input_value("input[name=min_agreement]") == "2"
    page.fill("input[name=min_agreement]", "0.5")
    page.select_option("select[name=strategy]", "all")
    page.click(".export-form button[type=submit]")
    page.wait_for_selector("#exports tbody tr")
    assert page.locator(".toast").first.inner_text().startswith("Export ")
    with page.expect_download() as info:
        page.click("#exports a:text('pairs.jsonl')")
    rows = [json.loads(line) for line in info.value.path().read_text().splitlines()]
    assert rows and {row["labeler"] for row in rows} == {"ext:x", "ext:y"}
    assert all(row["agreement"] >= 0.5 for row in rows)

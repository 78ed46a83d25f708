"""An admin starts a run from the dashboard in a real browser and watches its curves grow
while a `prefloop worker` process runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.db.models import Export
from app.services.accounts import users
from tests.conftest import PASSWORD
from tests.factories import make_project
from tests.helpers.live import LiveServer, start_server
from tests.helpers.worker import worker_env, worker_process
from tests.training.conftest import build_tiny_llama, marker_rows, write_export

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(databases, tmp_path) -> Iterator[tuple[LiveServer, int, Path]]:
    """A server and a worker sharing one database and one DATA_DIR, an admin and an export."""
    url, data_dir = databases.new(), tmp_path / "data"
    engine = create_engine(url)
    with Session(engine) as session:
        users.create_user(session, "root", PASSWORD, "admin")
        export = Export(
            project_id=make_project(session).id,
            strategy="consensus",
            filters={},
            manifest={"counts": {"pairs": 12}},
            path="",
        )
        session.add(export)
        session.flush()
        write_export(data_dir / "exports" / str(export.id), marker_rows(6, chat=True))
        session.commit()
        export_id = export.id
    engine.dispose()
    with (
        start_server(url, env={"DATA_DIR": str(data_dir)}) as server,
        worker_process("browser", worker_env(url, data_dir), tmp_path / "worker.log"),
    ):
        yield server, export_id, tmp_path


@pytest.mark.timeout(300)
def test_admin_starts_a_run_and_sees_the_chart_update(page, stack):
    server, export_id, tmp_path = stack
    model = build_tiny_llama(tmp_path / "tiny-llama")
    page.goto(f"{server.url}/login")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{server.url}/")

    page.goto(f"{server.url}/admin/runs")
    page.select_option("#run-kind", "ppo")
    assert page.locator("select[name=parent_run_id]").is_visible()  # PPO needs a reward run
    page.select_option("#run-kind", "dpo")
    assert not page.locator("select[name=parent_run_id]").is_visible()
    page.select_option("select[name=export_id]", str(export_id))
    page.fill("input[name=base_model]", str(model))
    page.select_option("select[name=preset]", "tiny-cpu")
    plan = "document.getElementById('memory-plan').innerText"
    page.wait_for_function(f"{plan}.includes('GB per GPU')")  # the memory plan, as you type
    assert "No GPU worker is registered" in page.inner_text("#memory-plan")  # a CPU worker
    button = page.locator("#run-form button[type=submit]")
    before = button.bounding_box()
    page.fill("textarea[name=config]", '{"max_steps": oops}')
    page.wait_for_function(f"{plan}.includes('not a JSON object yet')")  # the plan follows
    assert button.bounding_box() == before  # ...and the button does not move under the pointer
    button.click()
    page.wait_for_selector("#run-form .error")  # the form came back with the problem listed
    assert "config" in page.inner_text("#run-form .error")
    page.fill("textarea[name=config]", '{"max_steps": 10, "logging_steps": 1, "eval_fraction": 0}')
    page.click("#run-form button[type=submit]")
    page.wait_for_url(f"{server.url}/admin/runs/*")

    charts = page.locator("#run-charts")
    page.wait_for_function(
        "document.getElementById('run-charts').dataset.points > 0", timeout=180_000
    )
    first = int(charts.get_attribute("data-points"))
    # The chart grows while the page polls; a fast run may finish within one poll after the
    # first point, so "grew" or "finished" both end the wait (the final count is checked below).
    page.wait_for_function(
        f"document.getElementById('run-charts').dataset.points > {first}"
        " || document.getElementById('run-live').dataset.status === 'succeeded'",
        timeout=120_000,
    )
    assert page.locator("[data-chart=loss] canvas").bounding_box()["height"] > 100
    assert page.locator("#charts-empty").is_hidden()
    assert page.locator("[data-chart=kl]").is_hidden()  # DPO logs no KL: no empty chart
    page.wait_for_selector("#run-live[data-status=succeeded]", timeout=180_000)
    assert "adapter/adapter_config.json" in page.inner_text("#run-live")
    # The live panel and the chart poll on their own clocks: wait until the chart itself has
    # seen the run finish (its last poll carries every step), then check what it drew.
    page.wait_for_selector("#run-charts[data-status=succeeded]", timeout=120_000)
    steps = int(charts.get_attribute("data-last-step"))
    assert steps == 10
    assert int(charts.get_attribute("data-points")) > 0

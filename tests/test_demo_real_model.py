"""With all-MiniLM-L6-v2 in MODELS_DIR (``make models``), the reward run that ``prefloop demo``'s
printed link fills in trains the real model on the public pairs, through a worker, to a held-out
accuracy clearly above chance, beside the annotators' agreement on the same held-out prompts.
Slow (it fine-tunes the real model); skipped when the model is not there."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db.models import TrainingRun
from app.services.demo import REAL_MODEL
from app.services.runs import queue as runs
from app.services.runs import view
from app.settings import Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
pytest.importorskip("trl")
MODELS = ROOT / "models"


def _link_query(output: str) -> dict[str, str]:
    link = re.search(r"pre-filled: (\S+)\)", output)
    assert link, output
    return dict(parse_qsl(urlsplit(link.group(1)).query))


@pytest.mark.timeout(3600)
def test_the_demo_link_trains_minilm_above_chance_beside_the_human_ceiling(databases):
    if not (MODELS / REAL_MODEL / "config.json").is_file():
        pytest.skip(f"{REAL_MODEL} is not in {MODELS} (make models)")
    url, data_dir = databases.new(), Path(tempfile.mkdtemp(prefix="prefloop-demo-real-"))
    engine = create_engine(url)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in (
                ("DATABASE_URL", url),
                ("DATA_DIR", data_dir),
                ("MODELS_DIR", MODELS),
            ):
                mp.setenv(name, str(value))
            seeded = CliRunner().invoke(cli_app, ["demo", "--no-serve"])
            assert seeded.exit_code == 0, seeded.output
            query = _link_query(seeded.output)
            assert query["base_model"] == str((MODELS / REAL_MODEL).resolve())
            settings = Settings(database_url=url, data_dir=data_dir)
            with Session(engine) as session:
                request = runs.RunRequest(
                    kind=query["kind"],
                    base_model=query["base_model"],
                    export_id=int(query["export_id"]),
                    preset=query["preset"],
                )
                run_id = runs.create_run(session, settings, request).id
            worked = CliRunner().invoke(cli_app, ["worker", "--once", "--kinds", "reward"])
            assert worked.exit_code == 0, worked.output
        with Session(engine) as session:
            run = session.get(TrainingRun, run_id)
            assert run.status == "succeeded", run.error or run.log_tail
            ceiling = view.human_ceiling(session, settings, run)
            seconds = run.duration_seconds
        print(f"demo reward run: {ceiling} in {seconds:.0f} s")  # the figures, for the record
        assert ceiling["random_model_note"] is None
        assert ceiling["held_out_prompts"] >= 100
        assert ceiling["model_accuracy"] > 0.6
        assert ceiling["human_agreement"] > 0.6 and ceiling["human_prompts"] >= 100
    finally:
        engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)

"""`prefloop demo` is ready to train: a reviewed project, its export, a tiny offline model, and
a reward run on them (preset tiny-cpu) that a worker finishes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db.models import Export, Judgment, Project, TrainingRun
from app.db.models.runs import RunMetric
from app.services.demo import PUBLIC_PROJECT_NAME, REVIEWED_PROJECT_NAME, reviewed_rows
from app.services.runs import queue as runs
from app.settings import Settings

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def demo_env(databases):
    """A fresh database and DATA_DIR seeded by ``prefloop demo --no-serve``."""
    url = databases.new()
    data_dir = Path(tempfile.mkdtemp(prefix="prefloop-demo-"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        mp.setenv("DATA_DIR", str(data_dir))
        mp.setenv("MODELS_DIR", str(data_dir / "no-real-models"))
        result = CliRunner().invoke(cli_app, ["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
        yield url, data_dir, result.output, mp
    shutil.rmtree(data_dir, ignore_errors=True)


def test_reviews_cover_every_demo_prompt_and_agree_with_gold():
    rows = reviewed_rows()
    assert len(rows) == 26
    for row in rows:
        ids = sorted(c["id"] for c in row["completions"])
        for judgment in row["judgments"]:
            assert sorted(i for tier in judgment["ranking"] for i in tier) == ids, row["id"]
            if row.get("gold"):
                assert judgment["ranking"] == row["gold"], row["id"]


def test_demo_seeds_reviewed_project_export_and_model_then_a_reward_run_finishes(demo_env):
    url, data_dir, output, mp = demo_env
    model = (data_dir / "models" / "tiny-llama").resolve()
    assert (model / "config.json").is_file()
    assert "start a 'reward' run on export #" in output and str(model) in output
    assert "preset=tiny-cpu" in output
    assert "tiny model is random" in output and "python -m training.model_wheels" in output
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            project = session.scalar(select(Project).where(Project.name == REVIEWED_PROJECT_NAME))
            assert project is not None
            n = session.scalar(
                select(func.count()).select_from(Judgment).where(Judgment.project_id == project.id)
            )
            assert n == 52
            export = session.scalar(select(Export).where(Export.project_id == project.id))
            assert export.manifest["counts"]["pairs"] > 0
            settings = Settings(database_url=url, data_dir=data_dir)
            run = runs.create_run(
                session,
                settings,
                runs.RunRequest(
                    kind="reward",
                    base_model=str(model),
                    export_id=export.id,
                    preset="tiny-cpu",
                    config={"max_steps": 2},
                ),
            )
            run_id, export_id, project_id = run.id, export.id, project.id
        again = CliRunner().invoke(cli_app, ["demo", "--no-serve"])  # idempotent
        assert again.exit_code == 0, again.output
        assert f"export #{export_id} " in again.output
        result = CliRunner().invoke(cli_app, ["worker", "--once", "--kinds", "reward"])
        assert result.exit_code == 0, result.output
        with Session(engine) as session:
            run = session.get(TrainingRun, run_id)
            assert run.status == "succeeded", run.error or run.log_tail
            metrics = session.scalars(
                select(RunMetric.values).where(RunMetric.run_id == run_id)
            ).all()
            assert metrics and any("loss" in str(v) for v in metrics)
            assert (
                session.scalar(
                    select(func.count()).select_from(Export).where(Export.project_id == project_id)
                )
                == 1
            )
    finally:
        engine.dispose()


def test_demo_seeds_the_public_pairs_judged_by_three_annotators_and_their_export(demo_env):
    url, _, output, _ = demo_env
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            project = session.scalar(select(Project).where(Project.name == PUBLIC_PROJECT_NAME))
            assert project is not None
            judgments = session.scalar(
                select(func.count()).select_from(Judgment).where(Judgment.project_id == project.id)
            )
            assert judgments == 3 * 600
            export = session.scalar(select(Export).where(Export.project_id == project.id))
            pairs = export.manifest["counts"]["pairs"]
            assert 450 <= pairs <= 600  # ties dropped: one pair a decisive prompt
            assert export.manifest["agreement"]["pairwise_agreement"] > 0.8
            assert f"export #{export.id} holds {pairs} pairs" in output
    finally:
        engine.dispose()

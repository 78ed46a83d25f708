"""Training-run rows for the runs tests: an export with files, a finished run."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import Export, Project, TrainingRun
from app.settings import Settings
from tests.factories import make_project
from tests.training.conftest import marker_rows, write_export


def make_export(db: Session, settings: Settings, project: Project | None = None) -> Export:
    """An export row and its files under DATA_DIR/exports/<id> (toy marker pairs)."""
    project = project or make_project(db)
    export = Export(
        project_id=project.id,
        strategy="consensus",
        filters={},
        manifest={"counts": {"pairs": 12}, "agreement": {"pairwise_agreement": 0.8}},
        path="",
    )
    db.add(export)
    db.flush()
    folder = write_export(settings.exports_dir / str(export.id), marker_rows(6))
    export.path = str(folder)
    db.commit()
    return export


def finished_run(db: Session, kind: str, status: str = "succeeded", **values) -> TrainingRun:
    run = TrainingRun(
        kind=kind,
        status=status,
        max_attempts=3,
        **{"base_model": "tiny-base", "config": {}, **values},
    )
    db.add(run)
    db.commit()
    return run

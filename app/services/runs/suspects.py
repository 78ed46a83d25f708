"""Suspected mislabels (issue 12 §4): a suspects run's flagged judgments, the admin's
decisions on them, and the count flagged per labeler.

A succeeded suspects run leaves ``suspects.jsonl`` in its run folder (``training.suspects``);
its pairs name a judgment by ``(prompt_id, labeler)`` (export strategy ``all``), which maps
back to one row of ``judgments`` (UNIQUE(prompt_id, labeler_id)) of the run's project.
A reviewed judgment (``suspect_reviews``) leaves every run's list. Sending back raises the
prompt's ``target_labels`` by one: the labeling queue hands the prompt out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    Completion,
    Judgment,
    Prompt,
    SuspectDecision,
    SuspectReview,
    TrainingRun,
    User,
)
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.suspects import FlaggedJudgment, flagged_judgments, flagged_per_labeler
from app.services.runs.queue import get_run
from app.services.runs.view import final_value
from app.settings import Settings
from training.queue import RunPaths
from training.runtime import SUSPECTS_FILE
from training.schema import RunKind, RunStatus

SMALLINT_MAX = 32767  # prompts.target_labels is a smallint


@dataclass(frozen=True)
class Suspect:
    """A flagged judgment as the admin reviews it."""

    flag: FlaggedJudgment
    judgment_id: int
    prompt_db_id: int
    prompt: Any
    chosen_text: str
    rejected_text: str
    target_labels: int
    n_judgments: int

    def as_dict(self) -> dict[str, Any]:
        f = self.flag
        return {
            "rank": f.rank,
            "judgment_id": self.judgment_id,
            "labeler": f.labeler,
            "prompt_id": self.prompt_db_id,
            "prompt_external_id": f.prompt_id,
            "prompt": self.prompt,
            "chosen": {"id": f.chosen_id, "text": self.chosen_text},
            "rejected": {"id": f.rejected_id, "text": self.rejected_text},
            "score_margin": f.score_margin,
            "p_labeled": f.p_labeled,
            "confidence": f.confidence,
            "contradicted_pairs": f.pairs,
            "target_labels": self.target_labels,
            "n_judgments": self.n_judgments,
        }


def _suspects_run(session: Session, run_id: int) -> TrainingRun:
    run = get_run(session, run_id)
    if run.kind != RunKind.suspects:
        raise NotFound(f"run {run_id} is a {run.kind} run: only suspects runs flag judgments")
    if run.status != RunStatus.succeeded:
        raise Conflict(f"run {run_id} is {run.status}: its suspects come once it succeeded")
    return run


def _flags(settings: Settings, run: TrainingRun) -> list[FlaggedJudgment]:
    path = RunPaths(settings.data_dir).run_dir(run.id) / SUSPECTS_FILE
    if not path.is_file():
        raise Conflict(f"run {run.id} has no {SUSPECTS_FILE} under DATA_DIR/runs")
    with path.open(encoding="utf-8") as handle:
        return flagged_judgments(handle)


def _judgment_rows(session: Session, project_id: int, flags: list[FlaggedJudgment]) -> dict:
    """``(prompt external id, username) -> row`` of the flagged judgments not reviewed yet."""
    if not flags:
        return {}
    reviewed = select(SuspectReview.id).where(SuspectReview.judgment_id == Judgment.id)
    stmt = (
        select(Judgment.id, Prompt.external_id, User.username, Prompt.id.label("prompt_db_id"))
        .add_columns(Prompt.prompt, Prompt.target_labels, Prompt.n_judgments)
        .join(Prompt, Prompt.id == Judgment.prompt_id)
        .join(User, User.id == Judgment.labeler_id)
        .where(Judgment.project_id == project_id, ~reviewed.exists())
        .where(tuple_(Prompt.external_id, User.username).in_([f.key for f in flags]))
    )
    return {(row.external_id, row.username): row for row in session.execute(stmt)}


def _texts(session: Session, prompt_ids: set[int]) -> dict[tuple[int, str], str]:
    stmt = select(Completion.prompt_id, Completion.external_id, Completion.text).where(
        Completion.prompt_id.in_(prompt_ids)
    )
    return {(pid, ext): text for pid, ext, text in session.execute(stmt)}


def open_suspects(
    session: Session, settings: Settings, run_id: int, limit: int | None = None
) -> list[Suspect]:
    """The run's flagged judgments that are still in the project and not reviewed yet,
    most confident first (at most ``limit``)."""
    run = _suspects_run(session, run_id)
    flags = _flags(settings, run)
    rows = _judgment_rows(session, run.project_id or 0, flags)
    kept = [f for f in flags if f.key in rows][:limit]
    texts = _texts(session, {rows[f.key].prompt_db_id for f in kept})
    suspects = []
    for flag in kept:
        row = rows[flag.key]
        suspects.append(
            Suspect(
                flag=flag,
                judgment_id=row.id,
                prompt_db_id=row.prompt_db_id,
                prompt=row.prompt,
                chosen_text=texts.get((row.prompt_db_id, flag.chosen_id), ""),
                rejected_text=texts.get((row.prompt_db_id, flag.rejected_id), ""),
                target_labels=row.target_labels,
                n_judgments=row.n_judgments,
            )
        )
    return suspects


def report(session: Session, settings: Settings, run_id: int, limit: int | None = None) -> dict:
    """What ``GET /api/v1/training-runs/{id}/suspects`` answers."""
    listed = open_suspects(session, settings, run_id, limit)
    run = session.get(TrainingRun, run_id)
    return {
        "run_id": run_id,
        "project_id": run.project_id if run else None,
        "calibration_threshold": final_value(session, run_id, ("calibration_threshold",)),
        "oof_accuracy": final_value(session, run_id, ("oof_accuracy",)),
        "suspects": [s.as_dict() for s in listed],
    }


def decide(
    session: Session, settings: Settings, run_id: int, judgment_id: int, decision: str, user: User
) -> SuspectReview:
    """Record the admin's decision on one flagged judgment of the run; ``sent_back`` raises
    its prompt's target k by one. A judgment is decided once (409 the second time)."""
    if decision not in set(SuspectDecision):
        raise ValidationFailed.single("decision", f"must be one of {', '.join(SuspectDecision)}")
    run = _suspects_run(session, run_id)
    judgment = session.get(Judgment, judgment_id)
    flags = _flags(settings, run)
    keys = {f.key for f in flags}
    if (
        judgment is None
        or judgment.project_id != run.project_id
        or _key(session, judgment) not in keys
    ):
        raise NotFound(f"judgment {judgment_id} is not a suspect of run {run_id}")
    inserted = session.execute(
        pg_insert(SuspectReview)
        .values(judgment_id=judgment_id, run_id=run_id, decision=decision, decided_by=user.id)
        .on_conflict_do_nothing(index_elements=["judgment_id"])
        .returning(SuspectReview.id)
    ).scalar()
    if inserted is None:
        session.rollback()
        raise Conflict(f"judgment {judgment_id} was already reviewed")
    if decision == SuspectDecision.sent_back:
        session.execute(
            update(Prompt)
            .where(Prompt.id == judgment.prompt_id, Prompt.target_labels < SMALLINT_MAX)
            .values(target_labels=Prompt.target_labels + 1)
        )
    session.commit()
    return session.get(SuspectReview, inserted)


def _key(session: Session, judgment: Judgment) -> tuple[str, str]:
    stmt = (
        select(Prompt.external_id, User.username)
        .join(Judgment, Judgment.prompt_id == Prompt.id)
        .join(User, User.id == Judgment.labeler_id)
        .where(Judgment.id == judgment.id)
    )
    external_id, username = session.execute(stmt).one()
    return external_id, username


def latest_flags_per_labeler(
    session: Session, settings: Settings, project_id: int
) -> tuple[int, dict[str, int]] | None:
    """(run id, judgments flagged per labeler) of the project's newest succeeded suspects
    run that left its file; None when there is none."""
    stmt = (
        select(TrainingRun)
        .where(
            TrainingRun.project_id == project_id,
            TrainingRun.kind == RunKind.suspects,
            TrainingRun.status == RunStatus.succeeded,
        )
        .order_by(TrainingRun.id.desc())
    )
    for run in session.scalars(stmt):
        try:
            return run.id, flagged_per_labeler(_flags(settings, run))
        except (Conflict, ValidationFailed):
            continue
    return None

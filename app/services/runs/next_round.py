"""The next labeling round: a generate run's completions become a new project, and once it is
labeled, the trained policy is compared with its base.

How generated completions reach the labelers: ``training.run("generate", ...)`` writes a SPEC §3
JSONL (completions of the trained policy and of its base, mixed and shuffled per prompt). The
worker never imports the app, so ``prefloop worker`` (``app/cli/worker.py``) hands the worker an
``on_success`` hook that calls :func:`create_round` after the generation and before the run is
marked succeeded: it creates the project (named after the run, settings and members copied from
the prompt set's project, ``training_runs.result_project_id`` set) and imports the file through
the import service, in ONE transaction: the project is only flushed, and the import commits it
with the prompts or rolls it back with them. If the import fails, nothing is left and the run
fails with that error. A retried run that had succeeded that far reuses its project, and
re-importing skips the prompts already there.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    Completion,
    Judgment,
    Project,
    ProjectMember,
    ProjectStatus,
    Prompt,
    TrainingRun,
)
from app.domain.errors import Conflict, NotFound
from app.domain.model_compare import RankedPrompt, compare, outcome_counts
from app.services import importing
from app.services.project_settings import parse_settings
from app.services.runs.queue import get_run
from training.schema import RunKind


def _round_name(session: Session, run: TrainingRun) -> str:
    """``Next round: run 12 (ppo run 9 vs base)``, made unique with ``#2``, ``#3``..."""
    parent = session.get(TrainingRun, run.parent_run_id) if run.parent_run_id else None
    source = f"{parent.kind} run {parent.id}" if parent else "base model"
    base = f"Next round: run {run.id} ({source} vs base)"
    name, n = base, 1
    while session.scalar(select(Project.id).where(Project.name == name)) is not None:
        n += 1
        name = f"{base} #{n}"
    return name


def _new_round_project(session: Session, run: TrainingRun) -> Project:
    """The project of a generate run, with the prompt set's settings and members."""
    source = session.get(Project, run.project_id) if run.project_id else None
    project = Project(
        name=_round_name(session, run),
        description=f"Completions sampled by training run {run.id} from `{run.base_model}`"
        + (f" with the adapter of run {run.parent_run_id}" if run.parent_run_id else "")
        + ", mixed with the base model's and shuffled.",
        status=ProjectStatus.active.value,
        settings=parse_settings(source.settings if source else None).model_dump(),
    )
    session.add(project)
    session.flush()
    if source is not None:
        members = select(ProjectMember.user_id).where(ProjectMember.project_id == source.id)
        session.execute(
            pg_insert(ProjectMember).from_select(
                ["project_id", "user_id"], select(project.id, members.subquery().c.user_id)
            )
        )
    run.result_project_id = project.id
    session.flush()
    return project


def create_round(session: Session, run_id: int, generated: Path) -> Project:
    """Turn a generate run's JSONL into its labeling project: one transaction (the import
    commits the new project with its prompts, or rolls both back); idempotent."""
    run = get_run(session, run_id)
    if run.kind != RunKind.generate:
        raise Conflict(f"run {run_id} is a {run.kind} run; only generate runs make a round")
    try:
        project = session.get(Project, run.result_project_id) if run.result_project_id else None
        if project is None:
            project = _new_round_project(session, run)
        with Path(generated).open("rb") as stream:
            importing.import_file(session, project, stream, "jsonl")
    except BaseException:
        session.rollback()  # the import rolls back its own failures; this covers the rest
        raise
    return project


def ranked_prompts(session: Session, project_id: int) -> tuple[list[RankedPrompt], list[str]]:
    """The project's labeled prompts (completion -> model, rankings) and its model names."""
    completions = session.execute(
        select(Completion.prompt_id, Completion.external_id, Completion.model)
        .join(Prompt, Prompt.id == Completion.prompt_id)
        .where(Prompt.project_id == project_id, Prompt.is_gold.is_(False))
    )
    models_of: dict[int, dict[str, str]] = defaultdict(dict)
    for prompt_id, completion_id, model in completions:
        models_of[prompt_id][completion_id] = model or "unknown"
    rankings: dict[int, list[Any]] = defaultdict(list)
    judged = select(Judgment.prompt_id, Judgment.ranking).where(
        Judgment.project_id == project_id,
        Judgment.ranking.is_not(None),
        Judgment.reject_all.is_(False),
    )
    for prompt_id, ranking in session.execute(judged):
        rankings[prompt_id].append(ranking)
    prompts = [
        RankedPrompt(models_of[pid], rankings[pid]) for pid in sorted(rankings) if pid in models_of
    ]
    models = sorted({m for by_id in models_of.values() for m in by_id.values()})
    return prompts, models


def round_run(session: Session, project_id: int) -> TrainingRun | None:
    """The generate run that made this project, if any."""
    return session.scalar(
        select(TrainingRun)
        .where(TrainingRun.result_project_id == project_id)
        .order_by(TrainingRun.id.desc())
        .limit(1)
    )


def _focus(models: list[str], run: TrainingRun | None) -> tuple[str, str] | None:
    """(trained policy, base) among the project's models: the base is the run's base model."""
    if run is None or len(models) != 2 or run.base_model not in models:
        return None
    policy = next(m for m in models if m != run.base_model)
    return policy, run.base_model


def comparison(session: Session, project_id: int) -> dict[str, Any]:
    """Win rate of the trained policy against its base (when the project is a generate run's
    round) and Bradley–Terry scores of every model, with bootstrap 95% intervals."""
    if session.get(Project, project_id) is None:
        raise NotFound(f"project {project_id} not found")
    run = round_run(session, project_id)
    prompts, models = ranked_prompts(session, project_id)
    result = compare(outcome_counts(prompts, models), models, focus=_focus(models, run))
    result["project_id"] = project_id
    result["run_id"] = run.id if run else None
    return result


def comparison_for_run(session: Session, run: TrainingRun) -> dict[str, Any]:
    if run.kind != RunKind.generate or run.result_project_id is None:
        raise NotFound(
            f"run {run.id} has no labeling round (only a succeeded generate run has one)"
        )
    return comparison(session, run.result_project_id)


def comparison_page(session: Session, project_id: int) -> dict[str, Any]:
    """The compare page's data: the comparison, the project and the run that made it."""
    result = comparison(session, project_id)
    run = session.get(TrainingRun, result["run_id"]) if result["run_id"] else None
    return {"project": session.get(Project, project_id), "run": run, "result": result}

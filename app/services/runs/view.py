"""What the API and the dashboard show of a run: metrics by step, samples, artifact files,
the human ceiling beside a reward model's held-out accuracy, and what the start form offers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Export, Project, RunMetric, TrainingRun
from app.domain.errors import NotFound
from app.services import agreement, demo
from app.settings import Settings
from training.config import RunConfig, build_config
from training.queue import RunPaths
from training.schema import FINAL, PARENT_KINDS, POLICY_KINDS, RunKind, RunStatus

ACCURACY_KEYS = ("eval_accuracy", "eval_rewards/accuracies")


def saved_config(run: TrainingRun) -> RunConfig:
    """The run's configuration as its config class reads it back (a field added since the run
    was created takes its default)."""
    return build_config(run.kind, overrides=run.config)


def metrics(session: Session, run_id: int, after_step: int | None = None) -> list[dict[str, Any]]:
    """Metrics by step, ascending; only steps after ``after_step`` when given."""
    stmt = select(RunMetric).where(RunMetric.run_id == run_id).order_by(RunMetric.step)
    if after_step is not None:
        stmt = stmt.where(RunMetric.step > after_step)
    return [
        {"step": m.step, "values": m.values, "samples": m.samples} for m in session.scalars(stmt)
    ]


def recent_samples(session: Session, run_id: int, steps: int = 3) -> list[dict[str, Any]]:
    """The sample completions of the last ``steps`` steps that logged some, newest first."""
    stmt = (
        select(RunMetric.step, RunMetric.samples)
        .where(RunMetric.run_id == run_id, RunMetric.samples.is_not(None))
        .order_by(RunMetric.step.desc())
        .limit(steps)
    )
    return [
        {"step": step, "samples": samples} for step, samples in session.execute(stmt) if samples
    ]


def final_value(session: Session, run_id: int, keys: tuple[str, ...]) -> float | None:
    """The last logged value of the first of ``keys`` that the run logged."""
    for key in keys:
        stmt = (
            select(RunMetric.values[key].as_float())
            .where(RunMetric.run_id == run_id, RunMetric.values.has_key(key))
            .order_by(RunMetric.step.desc())
            .limit(1)
        )
        value = session.scalar(stmt)
        if value is not None:
            return value
    return None


def artifacts(settings: Settings, run: TrainingRun) -> list[dict[str, Any]]:
    """Files of the run folder (``inputs/`` included), with sizes, sorted by path."""
    root = RunPaths(settings.data_dir).run_dir(run.id)
    if not root.is_dir():
        return []
    return [
        {"path": p.relative_to(root).as_posix(), "size": p.stat().st_size}
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]


def artifact_file(settings: Settings, run: TrainingRun, path: str) -> Path:
    """One file of the run folder; NotFound for anything outside it or missing."""
    root = RunPaths(settings.data_dir).run_dir(run.id).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFound(f"run {run.id} has no file {path!r}")
    return target


def _held_out_prompt_ids(folder: Path, config: RunConfig) -> set[str]:
    """The prompts the reward model was evaluated on: the same split as training's."""
    from training.data import prompt_key, split_by_prompt

    with (folder / "pairs.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    rows = [r for r in rows if not r.get("tie")]
    _, held_out = split_by_prompt(rows, config.eval_fraction, config.seed)
    return {prompt_key(r) for r in held_out}


def human_ceiling(session: Session, settings: Settings, run: TrainingRun) -> dict[str, Any] | None:
    """A reward model's held-out accuracy beside the labelers' pairwise agreement (SPEC §6,
    with its bootstrap 95% interval) on the same held-out prompts: the human ceiling."""
    if run.kind != RunKind.reward or run.export_id is None:
        return None
    export = session.get(Export, run.export_id)
    folder = RunPaths(settings.data_dir).export_dir(run.export_id)
    if export is None or not (folder / "pairs.jsonl").is_file():
        return None
    held_out = _held_out_prompt_ids(folder, saved_config(run))
    records = [
        r for r in agreement.load_records(session, export.project_id) if r.prompt_id in held_out
    ]
    figures = agreement.project_summary(agreement.outcome_table(records)) if records else {}
    return {
        "model_accuracy": final_value(session, run.id, ACCURACY_KEYS),
        "held_out_prompts": len(held_out),
        "human_agreement": figures.get("pairwise_agreement"),
        "human_agreement_ci": (figures.get("ci95") or {}).get("pairwise_agreement"),
        "human_prompts": (figures.get("counts") or {}).get("prompts", 0),
        "project_pairwise_agreement": (export.manifest.get("agreement") or {}).get(
            "pairwise_agreement"
        ),
        "random_model_note": (
            demo.real_model_hint(settings)
            if Path(run.base_model) == demo.tiny_model_folder(settings)
            else None
        ),
    }


def is_final(run: TrainingRun) -> bool:
    """No worker moves the run any more (the page stops polling)."""
    return run.status in FINAL


def parent_run(session: Session, run: TrainingRun) -> TrainingRun | None:
    return session.get(TrainingRun, run.parent_run_id) if run.parent_run_id else None


def _exports_offered(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Export, Project.name)
        .join(Project, Project.id == Export.project_id)
        .order_by(Export.id.desc())
        .limit(200)
    ).all()
    return [
        {
            "id": e.id,
            "project": name,
            "strategy": e.strategy,
            "pairs": (e.manifest.get("counts") or {}).get("pairs"),
            "created_at": e.created_at,
        }
        for e, name in rows
    ]


def form_choices(session: Session) -> dict[str, Any]:
    """What the start form offers: the newest exports, succeeded runs that can be a parent
    (reward runs for PPO, policy runs for generate), and the projects (prompt sets)."""
    parents = sorted({k for kinds in PARENT_KINDS.values() for k in kinds})
    finished = list(
        session.scalars(
            select(TrainingRun)
            .where(TrainingRun.status == RunStatus.succeeded, TrainingRun.kind.in_(parents))
            .order_by(TrainingRun.id.desc())
        )
    )
    return {
        "exports": _exports_offered(session),
        "reward_runs": [r for r in finished if r.kind == RunKind.reward],
        "policy_runs": [r for r in finished if r.kind in POLICY_KINDS],
        "projects": list(session.scalars(select(Project).order_by(Project.name))),
    }

"""Training runs as a queue (SPEC §10): create (validated), cancel, retry, list.

A run is executed by a worker (``prefloop worker``, ``training/worker.py``); this module only
writes the queue rows and, for generate runs, the prompt file the worker reads. Files follow
the layout of ``training.queue.RunPaths`` under the shared ``DATA_DIR``.

The moves this module makes (``training.schema.TRANSITIONS`` lists them all; the worker makes
the others)::

    queued  --cancel-->  cancelled            running --cancel--> cancel_requested = true
    failed | cancelled  --retry-->  queued    (attempts start again from 0)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Export, Project, Prompt, TrainingRun
from app.domain.errors import Conflict, NotFound, Problems, ValidationFailed
from app.domain.pairs import ALL
from app.services.runs.plan import check_fits, plan_run
from app.settings import Settings
from training.config import ConfigError, build_config
from training.queue import RunPaths
from training.schema import (
    BASE_MODEL_CHARS,
    LOG_TAIL_CHARS,
    PARENT_KINDS,
    RETRYABLE,
    RunKind,
    RunStatus,
)


@dataclass(frozen=True)
class RunRequest:
    """What an admin asks for (SPEC §7 ``POST /api/v1/training-runs``).

    ``config`` holds training config fields of the kind (over the ``preset``); ``project_id``
    is the prompt set of a generate run when it is not an export.
    """

    kind: str
    base_model: str = ""
    export_id: int | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    parent_run_id: int | None = None
    preset: str | None = None
    project_id: int | None = None


def config_error_field(exc: ConfigError) -> str:
    """The request field a ``build_config`` error is about: ``preset`` or ``config.<field>``."""
    return exc.field if exc.field in ("kind", "preset") else f"config.{exc.field}"


def _resolved_config(request: RunRequest, problems: Problems) -> dict[str, Any]:
    """The full config (defaults < preset < ``config``). A generate run from a policy mixes in
    the base model's samples unless ``config.mix_base`` says otherwise."""
    if not isinstance(request.config, dict):
        problems.add("config", "must be an object of training config fields")
        return {}
    overrides = dict(request.config)
    generate = request.kind == RunKind.generate
    if generate and request.parent_run_id is not None:
        overrides.setdefault("mix_base", True)
    try:
        config = build_config(
            request.kind, preset=request.preset or None, overrides=overrides
        ).to_dict()
    except ConfigError as exc:
        problems.add(config_error_field(exc), str(exc))
        return {}
    if generate and request.parent_run_id is None and config["mix_base"]:
        problems.add("config.mix_base", "mixing in the base needs a parent DPO/PPO run")
    return config


def _parent(session: Session, request: RunRequest, problems: Problems) -> TrainingRun | None:
    """The parent run: a succeeded reward run for PPO, a succeeded DPO/PPO run for generate."""
    kinds = PARENT_KINDS.get(request.kind)
    if request.parent_run_id is None:
        if request.kind == RunKind.ppo:
            problems.add("parent_run_id", "PPO needs a succeeded reward-model run")
        return None
    parent = session.get(TrainingRun, request.parent_run_id)
    if kinds is None:
        problems.add("parent_run_id", f"a {request.kind} run takes no parent run")
    elif parent is None:
        problems.add("parent_run_id", f"no training run {request.parent_run_id}")
    elif parent.kind not in kinds or parent.status != RunStatus.succeeded:
        problems.add(
            "parent_run_id",
            f"must be a succeeded {' or '.join(kinds)} run "
            f"(run {parent.id} is a {parent.status} {parent.kind} run)",
        )
    else:
        return parent
    return None


def _export(
    session: Session, settings: Settings, request: RunRequest, problems: Problems
) -> Export | None:
    if request.export_id is None:
        if request.kind != RunKind.generate:
            problems.add("export_id", f"a {request.kind} run trains on an export")
        return None
    export = session.get(Export, request.export_id)
    if export is None:
        problems.add("export_id", f"no export {request.export_id}")
    elif not (RunPaths(settings.data_dir).export_dir(export.id) / "manifest.json").is_file():
        problems.add("export_id", f"export {export.id} has no files under DATA_DIR/exports")
    elif request.kind == RunKind.suspects and export.strategy != ALL:
        problems.add(
            "export_id",
            f"a suspects run judges each labeler's pairs: export {export.id} has strategy "
            f"{export.strategy!r}, make one with strategy {ALL!r}",
        )
    return export


def _base_model(request: RunRequest, parent: TrainingRun | None, problems: Problems) -> str:
    base = (request.base_model or "").strip()
    if request.kind == RunKind.generate and parent is not None:
        if base and base != parent.base_model:
            problems.add(
                "base_model",
                f"the adapter of run {parent.id} was trained on "
                f"{parent.base_model!r}; leave it empty or use that model",
            )
        return parent.base_model
    if not base:
        problems.add("base_model", "name a model (hub id or a local folder)")
    elif len(base) > BASE_MODEL_CHARS:
        problems.add("base_model", f"at most {BASE_MODEL_CHARS} characters")
    return base


def _prompt_source(session: Session, request: RunRequest, problems: Problems) -> None:
    if request.kind != RunKind.generate:
        if request.project_id is not None:
            problems.add("project_id", "only a generate run takes a project as its prompt set")
        return
    if (request.export_id is None) == (request.project_id is None):
        problems.add("project_id", "a generate run takes one prompt set: an export or a project")
    elif request.project_id is not None and session.get(Project, request.project_id) is None:
        problems.add("project_id", f"no project {request.project_id}")


def create_run(session: Session, settings: Settings, request: RunRequest) -> TrainingRun:
    """Validate and queue a run. For a generate run, its prompt file is written before the
    commit (a worker may claim the run the moment it is committed). A run whose memory plan
    fits no registered GPU worker is refused; the plan is left on ``run.memory_plan``."""
    problems = Problems()
    if request.kind not in set(RunKind):
        problems.add("kind", f"one of {', '.join(RunKind)}")
        problems.raise_if_any()
    config = _resolved_config(request, problems)
    parent = _parent(session, request, problems)
    export = _export(session, settings, request, problems)
    base = _base_model(request, parent, problems)
    _prompt_source(session, request, problems)
    plan = plan_run(session, request.kind, base, config) if config and base else None
    check_fits(plan, problems)
    problems.raise_if_any()
    run = TrainingRun(
        kind=request.kind,
        config=config,
        base_model=base,
        export_id=export.id if export else None,
        parent_run_id=parent.id if parent else None,
        project_id=request.project_id
        if request.project_id is not None
        else (export.project_id if export else None),
        max_attempts=settings.run_max_attempts,
        status=RunStatus.queued.value,
    )
    run.memory_plan = plan.to_dict() if plan else None
    session.add(run)
    session.flush()
    run_dir = RunPaths(settings.data_dir).run_dir(run.id)
    try:
        if run.kind == RunKind.generate:
            _write_prompts(session, settings, run, request)
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run


def _write_prompts(
    session: Session, settings: Settings, run: TrainingRun, request: RunRequest
) -> None:
    """The prompt set of a generate run as ``{"id", "prompt"}`` lines (training.load_prompts)."""
    paths = RunPaths(settings.data_dir)
    if request.export_id is not None:
        rows = _export_prompts(paths.export_dir(request.export_id) / "pairs.jsonl")
        source = {"export_id": request.export_id}
    else:
        stmt = (
            select(Prompt.external_id, Prompt.prompt)
            .where(Prompt.project_id == request.project_id, Prompt.is_gold.is_(False))
            .order_by(Prompt.id)
        )
        rows = [{"id": ext, "prompt": prompt} for ext, prompt in session.execute(stmt)]
        source = {"project_id": request.project_id}
    for row in rows:
        row["metadata"] = {"source": source, "source_prompt_id": row["id"]}
    if not rows:
        raise ValidationFailed.single(
            "project_id" if request.project_id else "export_id", "the prompt set holds no prompts"
        )
    target = paths.prompts_file(run.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    target.write_text(body, encoding="utf-8")


def _export_prompts(pairs: Path) -> list[dict[str, Any]]:
    seen: dict[str, Any] = {}
    with pairs.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                seen.setdefault(str(row["prompt_id"]), row["prompt"])
    return [{"id": pid, "prompt": prompt} for pid, prompt in seen.items()]


def get_run(session: Session, run_id: int, *, lock: bool = False) -> TrainingRun:
    stmt = select(TrainingRun).where(TrainingRun.id == run_id)
    run = session.scalar(stmt.with_for_update() if lock else stmt)
    if run is None:
        raise NotFound(f"training run {run_id} not found")
    return run


def cancel_run(session: Session, run_id: int) -> TrainingRun:
    """A queued run is cancelled at once; a running one is asked to stop (its worker stops
    it at the next logging step). A finished run cannot be cancelled."""
    run = get_run(session, run_id, lock=True)
    if run.status == RunStatus.queued:
        run.status = RunStatus.cancelled.value
        run.finished_at = func.now()
    elif run.status == RunStatus.running:
        run.cancel_requested = True
    else:
        session.rollback()
        raise Conflict(
            f"run {run_id} is {run.status}; only queued or running runs can be cancelled"
        )
    session.commit()
    session.refresh(run)
    return run


def retry_run(session: Session, run_id: int) -> TrainingRun:
    """Queue a failed or cancelled run again, with a fresh budget of attempts."""
    run = get_run(session, run_id, lock=True)
    if run.status not in RETRYABLE:
        session.rollback()
        raise Conflict(
            f"run {run_id} is {run.status}; only failed or cancelled runs can be retried"
        )
    run.status = RunStatus.queued.value
    run.attempts = 0
    run.cancel_requested = False
    run.error = None
    run.worker = run.heartbeat_at = run.started_at = run.finished_at = None
    run.artifact_uri = None
    run.log_tail = (run.log_tail + "\n[retry] queued again").lstrip("\n")[-LOG_TAIL_CHARS:]
    session.commit()
    return run


def list_runs(
    session: Session, *, kind: str | None = None, status: str | None = None, limit: int = 200
) -> list[TrainingRun]:
    stmt = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(TrainingRun.kind == kind)
    if status:
        stmt = stmt.where(TrainingRun.status == status)
    return list(session.scalars(stmt))

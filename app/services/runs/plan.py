"""Memory plans of runs against the registered GPU workers (``training.memory``).

A run whose plan fits no registered GPU worker is refused with the figure and a preset (or a
sharding strategy) that would fit. With no GPU worker registered (a CPU-only setup), nothing is
refused; the plan is still shown. A base model whose ``config.json`` cannot be read (a hub id
not in the local cache) has no plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import RegisteredWorker
from app.domain.errors import Problems
from training.config import PRESETS, ConfigError, build_config
from training.jobs import JOB_KINDS
from training.memory import GB, Estimate, estimate, read_model_config
from training.schema import WORKER_SEEN_HOURS, RunKind

SUGGESTED_PRESETS = [name for name in PRESETS if name != "tiny-cpu"]
SHARDED = ("fsdp", "zero3")


@dataclass(frozen=True)
class GpuWorker:
    """What planning needs of a registered worker."""

    name: str
    gpus: int
    memory_bytes: float  # the smallest of its GPUs
    processes: int


@dataclass
class Plan:
    """The estimate of a run (per device) and, when GPU workers are registered, whether and
    where it fits, with a suggestion when it does not."""

    estimate: Estimate
    workers: list[GpuWorker] = field(default_factory=list)
    fits_on: list[str] = field(default_factory=list)
    suggestion: str | None = None

    @property
    def fits(self) -> bool | None:
        return bool(self.fits_on) if self.workers else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.estimate.to_dict(),
            "fits": self.fits,
            "fits_on": self.fits_on,
            "suggestion": self.suggestion,
        }


def gpu_workers(session: Session) -> list[GpuWorker]:
    """Registered workers with GPUs, seen within ``WORKER_SEEN_HOURS``."""
    since = datetime.now(UTC) - timedelta(hours=WORKER_SEEN_HOURS)
    rows = session.scalars(select(RegisteredWorker).where(RegisteredWorker.seen_at >= since))
    found = []
    for row in rows:
        memory = [float(d.get("memory_bytes") or 0) for d in row.devices or []]
        if memory:
            found.append(GpuWorker(row.name, len(memory), min(memory), row.processes))
    return found


def _processes(kind: str, config: dict[str, Any], available: int) -> int:
    if not JOB_KINDS[kind].distributed:
        return 1
    wanted = config.get("num_processes")
    return max(1, min(available, int(wanted))) if wanted else max(1, available)


def _fits_on(model: dict[str, Any], kind: str, config: dict[str, Any], workers: list) -> list:
    return [
        w.name
        for w in workers
        if estimate(model, kind, config, _processes(kind, config, w.processes)).fits(w.memory_bytes)
    ]


def plan_run(session: Session, kind: str, base_model: str, config: dict[str, Any]) -> Plan | None:
    """The run's plan; None when the base model's config cannot be read."""
    model = read_model_config(base_model) if base_model else None
    if model is None or kind not in JOB_KINDS:
        return None
    try:
        workers = gpu_workers(session)
        processes = _processes(kind, config, max((w.processes for w in workers), default=1))
        plan = Plan(estimate(model, kind, config, processes), workers)
    except (ValueError, TypeError, KeyError):  # a config.json this planner cannot read
        return None
    if workers:
        plan.fits_on = _fits_on(model, kind, config, workers)
        if not plan.fits_on:
            plan.suggestion = _suggestion(model, kind, config, workers)
    return plan


def _suggestion(
    model: dict[str, Any], kind: str, config: dict[str, Any], workers: list[GpuWorker]
) -> str:
    """A preset (and, for reward and DPO, a sharding strategy) that fits some worker."""
    keep = {k: config[k] for k in ("distributed", "num_processes") if k in config}
    strategies = [keep.get("distributed", "ddp")]
    if kind in (RunKind.reward, RunKind.dpo):
        strategies += [s for s in SHARDED if s not in strategies]
    for strategy in strategies:
        for preset in [None, *SUGGESTED_PRESETS]:
            try:
                overrides = {**(config if preset is None else keep), "distributed": strategy}
                candidate = build_config(kind, preset=preset, overrides=overrides).to_dict()
            except ConfigError:
                continue
            where = _fits_on(model, kind, candidate, workers)
            if where and (preset or strategy != strategies[0]):
                shown = f"preset {preset!r}" if preset else "these settings"
                return f"{shown} with distributed: {strategy} would fit on {where[0]}"
    return "no preset fits: use a smaller base model, load_in_4bit, or more GPUs"


def check_fits(plan: Plan | None, problems: Problems) -> None:
    """Refuse a run that fits no registered GPU worker, naming the figure and a way out."""
    if plan is None or plan.fits is not False:
        return
    biggest = max(plan.workers, key=lambda w: w.memory_bytes)
    problems.add(
        "config",
        f"needs about {plan.estimate.required / GB:.1f} GB per GPU "
        f"({plan.estimate.total / GB:.1f} GB estimated over {plan.estimate.processes} "
        f"process(es), {plan.estimate.strategy}, plus margin and CUDA context); the largest "
        f"registered GPU worker, {biggest.name}, has {biggest.gpus} × "
        f"{biggest.memory_bytes / GB:.1f} GB. Try {plan.suggestion}",
    )


def preview(
    session: Session, kind: str, base_model: str, preset: str, config: dict[str, Any]
) -> tuple[Plan | None, str | None]:
    """The plan the start form shows, or why there is none yet."""
    if kind not in JOB_KINDS:
        return None, "choose a kind to see its memory plan"
    try:
        resolved = build_config(kind, preset=preset or None, overrides=config).to_dict()
    except ConfigError as exc:
        return None, f"{exc} (no memory plan)"
    if not base_model.strip():
        return None, "name a base model to see its memory plan"
    found = plan_run(session, kind, base_model.strip(), resolved)
    if found is None:
        return None, f"no readable config.json for {base_model.strip()!r}: no memory plan"
    return found, None

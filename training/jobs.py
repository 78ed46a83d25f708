"""A run as a job: what each kind needs (the one dispatch table), the job file the worker
writes, the child side (``python -m training job SPEC``, one per process) and what the worker
reads back (result, error, the processes' adapter digests).

Files of a job in the run folder ``DATA_DIR/runs/<id>/``::

    job.json        what to run: kind, model, out, config and the kind's inputs (paths)
    train.log       stdout and stderr of every process (the worker streams its tail)
    result.json     written by rank 0 when ``training.run`` returned (with its peak GPU memory)
    error.json      the first error raised by any process (type, message, out of memory?)
    ranks/<N>.json  every process's digest of its trained adapter weights, world size, backend

No torch import at module level: the worker imports this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.queue import ClaimedRun, RunPaths
from training.runtime import RunResult
from training.schema import RunKind

JOB_FILE = "job.json"
LOG_FILE = "train.log"
RESULT_FILE = "result.json"
ERROR_FILE = "error.json"
RANKS_DIR = "ranks"
OOM_MARKERS = ("OutOfMemoryError", "CUDA out of memory", "CUDA error: out of memory")


@dataclass(frozen=True)
class JobKind:
    """How the worker runs one kind: its inputs (keyword arguments of ``training.run``,
    paths under DATA_DIR) and whether it may use several processes."""

    inputs: Callable[[RunPaths, ClaimedRun], dict[str, Any]]
    distributed: bool = True


def _export_inputs(paths: RunPaths, run: ClaimedRun) -> dict[str, Any]:
    return {} if run.export_id is None else {"data": paths.export_dir(run.export_id)}


def _ppo_inputs(paths: RunPaths, run: ClaimedRun) -> dict[str, Any]:
    inputs = _export_inputs(paths, run)
    if run.parent_run_id is not None:
        inputs["reward"] = paths.run_dir(run.parent_run_id)
    return inputs


def _generate_inputs(paths: RunPaths, run: ClaimedRun) -> dict[str, Any]:
    inputs: dict[str, Any] = {"prompts": paths.prompts_file(run.id)}
    if run.parent_run_id is not None:
        inputs["adapter"] = paths.run_dir(run.parent_run_id)
    return inputs


JOB_KINDS: dict[str, JobKind] = {
    RunKind.reward: JobKind(_export_inputs),
    RunKind.dpo: JobKind(_export_inputs),
    RunKind.ppo: JobKind(_ppo_inputs),
    RunKind.generate: JobKind(_generate_inputs, distributed=False),
    # one process: the folds are trained one after another, each on the other folds' prompts
    RunKind.suspects: JobKind(_export_inputs, distributed=False),
}
"""Every kind the worker runs, and how: the one table to extend with a new kind."""


def process_count(run: ClaimedRun, available: int) -> int:
    """The worker's processes, or fewer: the run's own ``num_processes`` when smaller, one
    for a kind that does not train distributed."""
    if not JOB_KINDS[run.kind].distributed:
        return 1
    wanted = run.config.get("num_processes")
    return max(1, min(available, int(wanted))) if wanted else max(1, available)


def write_job(paths: RunPaths, run: ClaimedRun) -> Path:
    """The job file of one attempt, in the run folder."""
    out = paths.run_dir(run.id)
    inputs = {k: str(v) for k, v in JOB_KINDS[run.kind].inputs(paths, run).items()}
    spec = {
        "kind": run.kind,
        "model": run.base_model,
        "out": str(out),
        "config": run.config,
        "inputs": inputs,
    }
    out.mkdir(parents=True, exist_ok=True)
    target = out / JOB_FILE
    target.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return target


def _rank() -> int:
    from training.runtime import RANK_VARIABLES

    for name in RANK_VARIABLES:
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name])
    return 0


def _write_once(path: Path, payload: dict[str, Any]) -> None:
    """Create ``path`` unless another process already did (the first error wins)."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(json.dumps(payload) + "\n")
    except FileExistsError:
        pass


def is_out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in OOM_MARKERS)


def run_job(spec_path: Path) -> int:
    """The child side, in each process: run ``training.run`` from the job file; rank 0
    writes ``result.json``; an error is written to ``error.json`` (exit code 1)."""
    import training
    from training.launch import LAUNCHER_PID_ENV, set_parent_death_signal

    launcher = os.environ.get(LAUNCHER_PID_ENV)
    set_parent_death_signal(int(launcher) if launcher else None)
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    out = Path(spec["out"])
    inputs = {k: Path(v) for k, v in spec["inputs"].items()}
    try:
        result = training.run(
            spec["kind"], model=spec["model"], out=out, config=spec["config"], **inputs
        )
    except BaseException as exc:  # noqa: BLE001 — reported to the worker, then re-raised as 1
        _write_once(
            out / ERROR_FILE,
            {
                "type": type(exc).__name__,
                "message": str(exc),
                "out_of_memory": is_out_of_memory(exc),
                "rank": _rank(),
            },
        )
        traceback.print_exc()
        return 1
    if _rank() == 0:
        payload = {
            "kind": result.kind,
            "artifact": str(result.artifact),
            "metrics": result.metrics,
            "steps": result.steps,
            "peak_gpu_memory_bytes": _peak_gpu_memory(),
        }
        (out / RESULT_FILE).write_text(json.dumps(payload) + "\n", encoding="utf-8")
    return 0


def _peak_gpu_memory() -> int | None:
    """``torch.cuda.max_memory_allocated`` of this process (None without CUDA): what the
    memory plan (``training.memory``) estimates."""
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def record_rank(out: Path, named_tensors: list[tuple[str, Any]], accelerator: Any) -> None:
    """Each process writes the sha256 of its trained weights (name, dtype, shape, bytes, in
    order): equal digests mean byte-identical adapters on every process."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in named_tensors:
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes())
    folder = Path(out) / RANKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "rank": _rank(),
        "world_size": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type.value),
        "backend": str(accelerator.state.backend),
        "sha256": digest.hexdigest(),
    }
    (folder / f"{_rank()}.json").write_text(json.dumps(payload) + "\n", encoding="utf-8")


def read_ranks(out: Path) -> list[dict[str, Any]]:
    """The processes' digests, by rank (empty for a kind that records none)."""
    folder = Path(out) / RANKS_DIR
    files = sorted(folder.glob("*.json"), key=lambda p: int(p.stem)) if folder.is_dir() else []
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


def read_result(out: Path) -> RunResult:
    """The ``RunResult`` rank 0 left in ``result.json``."""
    data = json.loads((Path(out) / RESULT_FILE).read_text(encoding="utf-8"))
    return RunResult(
        kind=data["kind"],
        out=Path(out),
        artifact=Path(data["artifact"]),
        metrics=data.get("metrics", {}),
        steps=int(data.get("steps", 0)),
    )


def failure_message(out: Path, exit_code: int, last_lines: list[str]) -> str:
    """Why a job failed, in plain words: the error a process raised (or how the processes
    ended), then the last lines of its log."""
    error_file = Path(out) / ERROR_FILE
    if error_file.is_file():
        error = json.loads(error_file.read_text(encoding="utf-8"))
        headline = f"{error['type']}: {error['message'][:800]}"
        if error.get("out_of_memory"):
            headline = f"out of GPU memory (rank {error.get('rank', 0)}): {headline}"
    elif any(marker in line for line in last_lines for marker in OOM_MARKERS):
        headline = "out of GPU memory: the training processes ran out of GPU memory"
    elif exit_code < 0 or exit_code in (137, 143):
        headline = f"the training processes were killed (exit code {exit_code})"
    else:
        headline = f"the training processes exited with code {exit_code}"
    tail = [line[:200] for line in last_lines[-15:]]
    return headline + ("\n--- last lines of the log ---\n" + "\n".join(tail) if tail else "")

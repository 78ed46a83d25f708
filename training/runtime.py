"""What every run shares: callbacks, the result, cancellation, precision and the run folder.

A run folder holds::

    adapter/           LoRA adapter (+ heads) and the tokenizer, loadable with PEFT
    run_config.json   kind, base model, data path and sha256, resolved config, library versions
    metrics.jsonl     one object per logging step: {"step": N, "<name>": value, ...}
    samples.jsonl     PPO sample completions: {"step": N, "samples": [...]}
    suspects.jsonl    a suspects run's pairs scored out of fold (``training.suspects``)
    README.md         what produced the folder and its final metrics
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ADAPTER_DIR = "adapter"
RUN_CONFIG = "run_config.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
SUSPECTS_FILE = "suspects.jsonl"


class Cancelled(Exception):
    """Raised by ``training.run`` when ``Callbacks.should_stop()`` returned true."""


class Callbacks:
    """Hooks for the caller (the DB worker); subclass and override what you need.

    ``on_log`` runs at every logging step with numeric metrics (and, for PPO, sample
    completions ``[{"prompt", "completion", "reward"}]`` every ``sample_every`` steps).
    ``should_stop`` is checked right after; when true the run stops cleanly (no adapter is
    saved) and ``training.Cancelled`` is raised.
    """

    def on_log(self, step: int, metrics: dict[str, float], samples: list[dict] | None) -> None:
        """Called at each logging step."""

    def should_stop(self) -> bool:
        """Return true to cancel the run at the next logging step."""
        return False


@dataclass
class RunResult:
    """What a finished run produced. ``artifact`` is the adapter folder (or, for generate, the
    JSONL file); ``metrics`` are the final figures (e.g. ``eval_accuracy`` for reward/DPO)."""

    kind: str
    out: Path
    artifact: Path
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    steps: int = 0


def resolve_precision(precision: str) -> tuple[Any, bool]:
    """``(torch dtype for the base weights, bf16 on?)``: ``auto`` is bf16 exactly when CUDA is
    available. ``bf16`` on a machine without CUDA is a config error naming the field (TRL's
    trainers would refuse it later with "Your setup doesn't support bf16/gpu")."""
    import torch

    from training.config_base import ConfigError

    cuda = torch.cuda.is_available()
    if precision == "bf16" and not cuda:
        raise ConfigError(
            "precision",
            "precision 'bf16' needs a CUDA GPU and this machine has none; "
            "use 'auto' (bf16 on a GPU, fp32 elsewhere) or 'fp32'",
        )
    use_bf16 = precision == "bf16" or (precision == "auto" and cuda)
    return (torch.bfloat16 if use_bf16 else torch.float32), use_bf16


LAUNCH_FLAGS = {
    "zero2": "ACCELERATE_USE_DEEPSPEED",
    "zero3": "ACCELERATE_USE_DEEPSPEED",
    "fsdp": "ACCELERATE_USE_FSDP",
}
"""The variable ``accelerate launch`` sets for each strategy's config file."""


def require_launch(config: Any) -> None:
    """A ``distributed`` strategy other than ddp is applied by ``accelerate launch`` with its
    config file (the worker does it); refuse a run started without it rather than ignore it."""
    import os

    from training.config_base import ConfigError

    strategy = getattr(config, "distributed", "ddp")
    flag = LAUNCH_FLAGS.get(strategy)
    if flag is None:
        return
    if os.environ.get(flag, "").lower() != "true":
        raise ConfigError(
            "distributed",
            f"distributed {strategy!r} needs `accelerate launch --config_file "
            f"training/accelerate/{strategy}.yaml -m training ...` (a worker launches it so)",
        )
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "distributed",
            f"distributed {strategy!r} needs CUDA GPUs: accelerate runs FSDP and DeepSpeed "
            "only on GPUs (on CPU it would silently train as plain ddp); use 'ddp'",
        )


def weight_options(dtype: Any, load_in_4bit: bool = False) -> dict[str, Any]:
    """``from_pretrained`` options of the base weights: the dtype, or 4-bit NF4 (bitsandbytes,
    CUDA) on this process's GPU with that dtype for the compute."""
    if not load_in_4bit:
        return {"dtype": dtype}
    import os

    import torch

    from training.config_base import ConfigError

    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ConfigError(
            "load_in_4bit", "load_in_4bit needs bitsandbytes: pip install 'prefloop[quant]'"
        ) from exc
    if not torch.cuda.is_available():
        raise ConfigError("load_in_4bit", "load_in_4bit needs a CUDA GPU (bitsandbytes)")
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    device = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"dtype": dtype, "quantization_config": quantization, "device_map": device}


def library_versions() -> dict[str, str]:
    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


RANK_VARIABLES = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK")


def is_main_process() -> bool:
    """Rank 0 of a launched job (torchrun or MPI set the rank), or a single process. Read from
    the environment: accelerate's ``PartialState()`` made before the Trainer would not know
    that CPU processes are distributed (gloo) and call every process the main one."""
    import os

    for name in RANK_VARIABLES:
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name]) == 0
    return True


def any_process(flag: bool) -> bool:
    """True on every process when it is true on any (one decision for all ranks)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = "cuda" if torch.cuda.is_available() and dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def numeric_metrics(values: dict[str, Any]) -> dict[str, float]:
    """Keep finite-or-not real numbers (no bools, no strings) as floats."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


class RunRecorder:
    """Writes the run folder and forwards each logging step to the callbacks.

    Only the main process writes files and calls callbacks; the stop decision is shared by
    all processes so that distributed runs stop together.
    """

    def __init__(
        self,
        out: Path,
        kind: str,
        model: str,
        config: dict[str, Any],
        callbacks: Callbacks | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.out, self.kind, self.model = Path(out), kind, model
        self.config = config
        self.data = {k: v for k, v in (data or {}).items() if v is not None}
        self.callbacks = callbacks or Callbacks()
        self.main = is_main_process()
        self.started = time.monotonic()
        self.last_metrics: dict[str, float] = {}
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / METRICS_FILE).write_text("", encoding="utf-8")
            run_config = {
                "kind": kind,
                "model": model,
                "data": self.data,
                "config": config,
                "versions": library_versions(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (self.out / RUN_CONFIG).write_text(
                json.dumps(run_config, indent=2) + "\n", encoding="utf-8"
            )

    @property
    def adapter_dir(self) -> Path:
        return self.out / ADAPTER_DIR

    def log(self, step: int, metrics: dict[str, Any], samples: list[dict] | None = None) -> bool:
        """Record one logging step; return True when the run must stop (on every process)."""
        values = numeric_metrics(metrics)
        self.last_metrics.update(values)
        stop = False
        if self.main:
            finite = {k: (v if math.isfinite(v) else None) for k, v in values.items()}
            line = {"step": step, **finite}
            with (self.out / METRICS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
            if samples:
                with (self.out / SAMPLES_FILE).open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"step": step, "samples": samples}) + "\n")
            self.callbacks.on_log(step, values, samples)
            stop = bool(self.callbacks.should_stop())
        return any_process(stop)

    def finish(
        self,
        final_metrics: dict[str, float],
        steps: int,
        artifact: Path | None = None,
        notes: str = "",
    ) -> RunResult:
        """Write README.md and return the run's result."""
        artifact = artifact or self.adapter_dir
        if self.main:
            (self.out / "README.md").write_text(
                self._readme(final_metrics, steps, artifact, notes), encoding="utf-8"
            )
        return RunResult(
            kind=self.kind,
            out=self.out,
            artifact=artifact,
            metrics=final_metrics,
            config=self.config,
            steps=steps,
        )

    def _readme(self, final: dict[str, float], steps: int, artifact: Path, notes: str) -> str:
        minutes = (time.monotonic() - self.started) / 60
        shown = artifact.relative_to(self.out) if artifact.is_relative_to(self.out) else artifact
        lines = [
            f"# Prefloop {self.kind} run",
            "",
            f"- base model: `{self.model}`",
            f"- artifact: `{shown}`",
            f"- steps: {steps}, wall time: {minutes:.1f} min",
        ]
        lines += [f"- data {k}: `{v}`" for k, v in self.data.items()]
        if notes:
            lines += ["", notes]
        lines += ["", "## Final metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(final.items())]
        lines += [
            "",
            "## Configuration",
            "",
            "```json",
            json.dumps(self.config, indent=2),
            "```",
            "",
            "Files: `run_config.json` (everything above), `metrics.jsonl` (by step).",
        ]
        return "\n".join(lines) + "\n"

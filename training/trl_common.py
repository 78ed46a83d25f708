"""Glue shared by the TRL-based kinds (reward, dpo): trainer arguments, LoRA, callbacks bridge.

Imported only inside run functions: it imports torch, transformers and peft at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import LoraConfig
from transformers import TrainerCallback

from training.config import DPORunConfig, RewardRunConfig
from training.runtime import Cancelled, RunRecorder


def lora_config(config: Any, task_type: str, r: int | None = None) -> LoraConfig:
    """LoRA from the run config (``r`` overrides the rank, e.g. for PPO's value adapter)."""
    rank = r or config.lora_r
    return LoraConfig(
        task_type=task_type,
        r=rank,
        lora_alpha=config.lora_alpha * rank // config.lora_r,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
    )


def trainer_arguments(
    config: RewardRunConfig | DPORunConfig, out: Path, use_bf16: bool, has_eval: bool
) -> dict[str, Any]:
    """Keyword arguments common to TRL's RewardConfig and DPOConfig (no checkpoints, no hub,
    no report_to integrations; evaluation every ``eval_steps`` when set)."""
    eval_every = has_eval and config.eval_steps is not None
    return {
        "output_dir": str(out / "trainer"),
        "seed": config.seed,
        "data_seed": config.seed,
        "learning_rate": config.learning_rate,
        "max_steps": config.max_steps,
        "num_train_epochs": config.num_train_epochs,
        "per_device_train_batch_size": config.per_device_batch_size,
        "per_device_eval_batch_size": config.per_device_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "logging_steps": config.logging_steps,
        "eval_strategy": "steps" if eval_every else "no",
        "eval_steps": config.eval_steps if eval_every else None,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "bf16": use_bf16,
        "gradient_checkpointing": config.gradient_checkpointing,
        "warmup_steps": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "lr_scheduler_type": config.lr_scheduler_type,
        "max_length": None,  # sequences are truncated beforehand
    }


class RecorderBridge(TrainerCallback):
    """Forwards every Trainer log to the RunRecorder; asks the Trainer to stop when the
    recorder says so."""

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder
        self.cancelled = False

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (HF signature)
        if logs and self.recorder.log(state.global_step, logs):
            self.cancelled = True
            control.should_training_stop = True
        return control


def train_or_cancel(trainer: Any, bridge: RecorderBridge) -> None:
    """Run ``trainer.train()``; raise Cancelled when the callbacks asked to stop."""
    trainer.train()
    if bridge.cancelled:
        raise Cancelled(f"run stopped at step {trainer.state.global_step} on request")


def prefixed(metrics: dict[str, float], rename: dict[str, str] | None = None) -> dict[str, float]:
    """Final metrics with TRL's names plus the stable aliases in ``rename``."""
    out = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    for source, alias in (rename or {}).items():
        if source in out:
            out[alias] = out[source]
    return out


def start_run(
    kind: str, data: Path, model: str, out: Path, config: Any, callbacks: Any
) -> tuple[Any, Any, bool, RunRecorder]:
    """The shared start of a TRL run: the export, the precision and the run's recorder."""
    from training.data import load_export
    from training.runtime import require_launch, resolve_precision

    require_launch(config)
    export = load_export(data)
    dtype, use_bf16 = resolve_precision(config.precision)
    recorder = RunRecorder(
        out,
        kind,
        model,
        config.to_dict(),
        callbacks,
        data={"path": str(data), "sha256": export.sha256},
    )
    return export, dtype, use_bf16, recorder


def fit_and_save(
    trainer: Any,
    recorder: RunRecorder,
    bridge: RecorderBridge,
    eval_aliases: dict[str, str] | None = None,
) -> Any:
    """Train (or stop on cancel), evaluate on the held-out split, save the adapter (and
    tokenizer, and a reward model's score head) and finish the run folder."""
    train_or_cancel(trainer, bridge)
    record_trained_weights(trainer.model, recorder.out, trainer.accelerator)
    final = {"train_loss": recorder.last_metrics.get("train_loss", float("nan"))}
    if trainer.eval_dataset is not None:
        final.update(prefixed(trainer.evaluate(), eval_aliases))  # also logged by the bridge
    trainer.save_model(str(recorder.adapter_dir))
    return recorder.finish(final, trainer.state.global_step)


def record_trained_weights(model: Any, out: Path, accelerator: Any) -> None:
    """Every process's digest of its trainable weights (``training.jobs.record_rank``);
    sharded (FSDP2) weights are gathered whole first, in the same order on every process."""
    from training.jobs import record_rank

    named = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            full = param.full_tensor() if hasattr(param, "full_tensor") else param
            named.append((name, full))
    record_rank(out, named, accelerator)

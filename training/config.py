"""Run configurations: one dataclass per kind, validated on creation.

A configuration is resolved in layers, each overriding the one before::

    defaults  <  preset  <  config file (YAML or JSON)  <  explicit overrides (CLI flags, API dict)

``build_config(kind, preset=..., file=..., overrides=...)`` does that and raises ``ValueError``
naming the field for an unknown field or a bad value; the dashboard validates a run's ``config``
dict with it. Presets: ``tiny-cpu`` (tiny CPU smoke), ``small-gpu`` (a ~0.1–1B model on one GPU)
and ``7b-24gb`` (7B on one 24 GB GPU: bf16 base, LoRA, gradient checkpointing, batch 1).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from training.presets import PRESETS

Precision = Literal["auto", "fp32", "bf16"]
DPO_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "robust",
    "bco_pair",
    "sppo_hard",
    "apo_zero",
    "apo_down",
    "sigmoid_norm",
    "exo_pair",
    "nca_pair",
    "discopop",
)


def _check_value(name: str, value: Any, hint: Any) -> Any:
    """Return ``value`` (ints widened to float where a float is expected) or raise ValueError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(name, value, option)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[-1])
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{name} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return [_check_value(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not isinstance(value, hint):
        raise ValueError(f"{name} must be of type {hint.__name__}, got {value!r}")
    return value


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{name} {message}")


@dataclass
class _Validated:
    """Base: checks every field's type, then the kind's own rules in ``_validate``."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check_value(f.name, getattr(self, f.name), hints[f.name]))
        self._validate()

    def _validate(self) -> None:
        """Field-range rules; subclasses extend it."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _LoraFields(_Validated):
    """LoRA adapter and numeric precision shared by every trainable kind."""

    seed: int = 42
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    precision: Precision = "auto"  # auto: bf16 when CUDA is available, else fp32

    def _validate(self) -> None:
        _require(self.lora_r >= 1, "lora_r", "must be >= 1")
        _require(self.lora_alpha >= 1, "lora_alpha", "must be >= 1")
        _require(0.0 <= self.lora_dropout < 1.0, "lora_dropout", "must be in [0, 1)")


@dataclass
class _TrainerFields(_LoraFields):
    """Fields of the TRL-trainer kinds (reward, dpo)."""

    learning_rate: float = 1e-4
    max_steps: int = -1  # -1: run num_train_epochs instead
    num_train_epochs: float = 1.0
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    logging_steps: int = 10
    eval_steps: int | None = None  # None: evaluate once, at the end
    eval_fraction: float = 0.1
    max_length: int = 512
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_scheduler_type: Literal["linear", "cosine", "constant"] = "linear"
    gradient_checkpointing: bool = False

    def _validate(self) -> None:
        super()._validate()
        _require(self.learning_rate > 0, "learning_rate", "must be > 0")
        _require(self.max_steps == -1 or self.max_steps >= 1, "max_steps", "must be >= 1 (or -1)")
        _require(self.num_train_epochs > 0, "num_train_epochs", "must be > 0")
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "logging_steps"):
            _require(getattr(self, name) >= 1, name, "must be >= 1")
        _require(self.eval_steps is None or self.eval_steps >= 1, "eval_steps", "must be >= 1")
        _require(0.0 <= self.eval_fraction < 1.0, "eval_fraction", "must be in [0, 1)")
        _require(self.max_length >= 8, "max_length", "must be >= 8")
        _require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "must be in [0, 1)")


@dataclass
class RewardRunConfig(_TrainerFields):
    """Reward model: Bradley–Terry on (chosen, rejected), LoRA (SEQ_CLS), head fully trained."""

    use_margin: bool = False  # loss = -log σ(r_c - r_r - margin_scale * margin)
    margin_scale: float = 1.0
    center_rewards_coefficient: float | None = None
    lora_layers: int | None = None  # adapt only the top N transformer layers (cheaper backward)
    modules_to_save: list[str] = dataclasses.field(default_factory=list)  # trained in full

    def _validate(self) -> None:
        super()._validate()
        _require(self.margin_scale >= 0, "margin_scale", "must be >= 0")
        _require(self.lora_layers is None or self.lora_layers >= 1, "lora_layers", "must be >= 1")


@dataclass
class DPORunConfig(_TrainerFields):
    """DPO with LoRA; the reference is the base with the adapter switched off."""

    learning_rate: float = 5e-5
    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0

    def _validate(self) -> None:
        super()._validate()
        _require(self.beta > 0, "beta", "must be > 0")
        _require(self.loss_type in DPO_LOSS_TYPES, "loss_type", f"must be one of {DPO_LOSS_TYPES}")
        _require(0.0 <= self.label_smoothing < 0.5, "label_smoothing", "must be in [0, 0.5)")


@dataclass
class PPORunConfig(_LoraFields):
    """PPO: sampled rollouts, per-token KL penalty, GAE, clipped policy and value losses.

    One step = one rollout of ``rollout_batch_size`` prompts, then ``ppo_epochs`` passes over it
    in minibatches of ``mini_batch_size`` sequences, each split into
    ``gradient_accumulation_steps`` micro-batches.
    """

    learning_rate: float = 1e-5
    max_steps: int = 100
    rollout_batch_size: int = 8
    mini_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    ppo_epochs: int = 4
    max_prompt_length: int = 256
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    gamma: float = 1.0
    lam: float = 0.95
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    ent_coef: float = 0.0
    kl_coef: float = 0.05
    adaptive_kl: bool = False  # Ziegler et al. 2019 proportional controller
    kl_target: float = 6.0
    kl_horizon: int = 10000
    whiten_rewards: bool = False
    max_grad_norm: float = 1.0
    value_lora_r: int = 8
    reward_batch_size: int = 8
    logging_steps: int = 1
    sample_every: int = 10  # log a few sample completions every N steps (0: never)
    num_samples: int = 2

    def _validate(self) -> None:
        super()._validate()
        for name in (
            "max_steps",
            "rollout_batch_size",
            "mini_batch_size",
            "ppo_epochs",
            "gradient_accumulation_steps",
            "max_prompt_length",
            "max_new_tokens",
            "value_lora_r",
            "reward_batch_size",
            "logging_steps",
            "kl_horizon",
        ):
            _require(getattr(self, name) >= 1, name, "must be >= 1")
        _require(
            self.rollout_batch_size % self.mini_batch_size == 0,
            "mini_batch_size",
            "must divide rollout_batch_size",
        )
        _require(
            self.mini_batch_size % self.gradient_accumulation_steps == 0,
            "gradient_accumulation_steps",
            "must divide mini_batch_size",
        )
        _require(self.learning_rate > 0, "learning_rate", "must be > 0")
        _require(self.temperature > 0, "temperature", "must be > 0")
        _require(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        _require(self.top_k >= 0, "top_k", "must be >= 0")
        _require(0.0 <= self.gamma <= 1.0, "gamma", "must be in [0, 1]")
        _require(0.0 <= self.lam <= 1.0, "lam", "must be in [0, 1]")
        for name in ("cliprange", "cliprange_value", "kl_target", "max_grad_norm"):
            _require(getattr(self, name) > 0, name, "must be > 0")
        for name in ("vf_coef", "ent_coef", "kl_coef", "sample_every", "num_samples"):
            _require(getattr(self, name) >= 0, name, "must be >= 0")


@dataclass
class GenerateRunConfig(_Validated):
    """Sampling n completions per prompt (``mix_base``: n from the adapter AND n from the base)."""

    n: int = 3
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.1
    mix_base: bool = False
    batch_size: int = 8
    seed: int = 0
    precision: Precision = "auto"

    def _validate(self) -> None:
        for name in ("n", "max_new_tokens", "batch_size"):
            _require(getattr(self, name) >= 1, name, "must be >= 1")
        total = self.n * (2 if self.mix_base else 1)
        _require(
            2 <= total <= 9,
            "n",
            f"gives {total} completions a prompt; the import format "
            "takes 2 to 9 (with mix_base, n from each model)",
        )
        _require(self.temperature > 0, "temperature", "must be > 0")
        _require(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        _require(self.top_k >= 0, "top_k", "must be >= 0")
        _require(self.repetition_penalty > 0, "repetition_penalty", "must be > 0")


RunConfig = RewardRunConfig | DPORunConfig | PPORunConfig | GenerateRunConfig
CONFIG_CLASSES: dict[str, type] = {
    "reward": RewardRunConfig,
    "dpo": DPORunConfig,
    "ppo": PPORunConfig,
    "generate": GenerateRunConfig,
}


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON file holding one mapping of fields."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValueError(f"config file {path} must hold a mapping of fields, got {kind}")
    return data


def build_config(
    kind: str,
    preset: str | None = None,
    file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a configuration for ``kind``: defaults < preset < file < overrides.

    Raises ``ValueError`` for an unknown kind, preset or field, or an invalid value.
    """
    if kind not in CONFIG_CLASSES:
        raise ValueError(f"kind must be one of {sorted(CONFIG_CLASSES)}, got {kind!r}")
    cls = CONFIG_CLASSES[kind]
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        values.update(PRESETS[preset][kind])
    if file is not None:
        values.update(load_config_file(Path(file)))
    values.update(overrides or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown field(s) for {kind}: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return cls(**values)


def coerce_config(kind: str, config: dict[str, Any] | RunConfig | None) -> RunConfig:
    """Accept a ready config of the right class, or a dict of overrides on the defaults."""
    if config is None or isinstance(config, dict):
        return build_config(kind, overrides=config or {})
    if not isinstance(config, CONFIG_CLASSES[kind]):
        raise ValueError(
            f"config for {kind} must be a {CONFIG_CLASSES[kind].__name__} or a dict, "
            f"got {type(config).__name__}"
        )
    return config


__all__ = [
    "CONFIG_CLASSES",
    "DPORunConfig",
    "GenerateRunConfig",
    "PPORunConfig",
    "PRESETS",
    "RewardRunConfig",
    "RunConfig",
    "build_config",
    "coerce_config",
    "load_config_file",
]

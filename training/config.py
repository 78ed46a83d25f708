"""Run configurations: one dataclass per kind, validated on creation.

A configuration is resolved in layers, each overriding the one before::

    defaults  <  preset  <  config file (YAML or JSON)  <  explicit overrides (CLI flags, API dict)

``build_config(kind, preset=..., file=..., overrides=...)`` does that and raises ``ConfigError``
(a ``ValueError`` whose ``.field`` names the field; the message starts with it) for an unknown
field or a bad value, including options that TRL or the PPO loop would ignore or reject later
(``label_smoothing`` on a loss that does not use it, ``top_k``/``top_p`` in PPO); the dashboard
validates a run's ``config`` dict with it. Presets: ``tiny-cpu`` (tiny CPU smoke),
``small-gpu`` (a ~0.1–1B model on one GPU) and ``7b-24gb`` (7B on one 24 GB GPU: bf16 base,
LoRA, gradient checkpointing, batch 1).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from training.config_base import ConfigError, LaunchFields, Validated, bound, require
from training.presets import PRESETS
from training.schema import RunKind

Precision = Literal["auto", "fp32", "bf16"]
# auto: a plain-string prompt becomes one user turn when the tokenizer has a chat template;
# chat: always (a template-less tokenizer gets "user: ...\nassistant: "); raw: text as it is
PromptFormat = Literal["auto", "chat", "raw"]
DPO_LOSS_TYPES = (
    *("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "apo_zero", "apo_down"),
    *("sigmoid_norm", "exo_pair", "nca_pair", "discopop"),
)
DPO_SMOOTHED_LOSSES = ("robust", "exo_pair")  # the only ones of DPO_LOSS_TYPES TRL 1.16 smooths


_UNTRUNCATED = "must be {} (PPO samples from the full softmax its log-probs are computed on)"
_FOLDS_EVALUATE = "must be 0 for a suspects run: each fold's held-out prompts are its evaluation"


def _targets_lm_head(targets: str | list[str]) -> bool:
    names = [targets] if isinstance(targets, str) else targets
    return any(name == "lm_head" or name.endswith(".lm_head") for name in names)


@dataclass
class _LoraFields(LaunchFields):
    """LoRA adapter, numeric precision and launch shared by every trainable kind."""

    seed: int = 42
    lora_r: int = bound(16, ge=1)
    lora_alpha: int = bound(32, ge=1)
    lora_dropout: float = bound(0.05, ge=0, lt=1)
    lora_target_modules: str | list[str] = "all-linear"
    precision: Precision = "auto"  # auto: bf16 when CUDA is available, else fp32
    prompt_format: PromptFormat = "auto"


@dataclass
class _TrainerFields(_LoraFields):
    """Fields of the TRL-trainer kinds (reward, dpo)."""

    learning_rate: float = bound(1e-4, gt=0)
    max_steps: int = bound(-1, ge=1, also=(-1,))  # -1: run num_train_epochs instead
    num_train_epochs: float = bound(1.0, gt=0)
    per_device_batch_size: int = bound(4, ge=1)
    gradient_accumulation_steps: int = bound(1, ge=1)
    logging_steps: int = bound(10, ge=1)
    eval_steps: int | None = bound(None, ge=1)  # None: evaluate once, at the end
    eval_fraction: float = bound(0.1, ge=0, lt=1)
    max_length: int = bound(512, ge=8)
    warmup_ratio: float = bound(0.0, ge=0, lt=1)
    weight_decay: float = 0.0
    lr_scheduler_type: Literal["linear", "cosine", "constant"] = "linear"
    gradient_checkpointing: bool = False
    load_in_4bit: bool = False  # QLoRA: NF4 base weights (the quant extra, bitsandbytes, CUDA)

    def _validate(self) -> None:
        super()._validate()
        require(
            self.eval_steps is None or self.eval_fraction > 0 or getattr(self, "dev_fraction", 0),
            "eval_steps",
            "needs eval_fraction > 0 (with no held-out split nothing is evaluated)",
        )


@dataclass
class RewardRunConfig(_TrainerFields):
    """Reward model: Bradley–Terry on (chosen, rejected), LoRA (SEQ_CLS), head fully trained."""

    use_margin: bool = False  # loss = -log σ(r_c - r_r - margin_scale * margin)
    margin_scale: float = bound(1.0, ge=0)
    center_rewards_coefficient: float | None = None
    # adapt only the top N transformer layers (cheaper backward)
    lora_layers: int | None = bound(None, ge=1)
    modules_to_save: list[str] = dataclasses.field(default_factory=list)  # trained in full
    full_finetune: bool = False  # train every weight, no LoRA: the run saves the whole model
    # share of the TRAIN prompts kept aside to pick the best weights
    dev_fraction: float = bound(0.0, ge=0, lt=1)
    # stop after N dev evaluations without a gain
    early_stopping_patience: int | None = bound(None, ge=1)

    def _validate(self) -> None:
        super()._validate()
        require(
            self.use_margin or self.margin_scale == 1.0,
            "margin_scale",
            "is used only with use_margin: true (it would be ignored)",
        )
        _validate_selection(self)


def _validate_selection(config: RewardRunConfig) -> None:
    """full_finetune excludes the LoRA-only options; a dev split needs eval_steps."""
    for name in ("lora_layers", "modules_to_save", "load_in_4bit"):
        require(
            not (config.full_finetune and getattr(config, name)),
            name,
            "is a LoRA option: it would be ignored with full_finetune: true",
        )
    require(
        config.dev_fraction == 0 or config.eval_steps is not None,
        "dev_fraction",
        "needs eval_steps (how often the dev split is evaluated)",
    )
    patience = config.early_stopping_patience
    require(
        patience is None or config.dev_fraction > 0,
        "early_stopping_patience",
        "needs dev_fraction > 0 (stopping is decided on the dev split, never the held-out one)",
    )


@dataclass
class DPORunConfig(_TrainerFields):
    """DPO with LoRA; the reference is the base with the adapter switched off."""

    learning_rate: float = bound(5e-5, gt=0)
    beta: float = bound(0.1, gt=0)
    loss_type: Literal[DPO_LOSS_TYPES] = "sigmoid"  # type: ignore[valid-type]
    label_smoothing: float = bound(0.0, ge=0, lt=0.5)

    def _validate(self) -> None:
        super()._validate()
        require(
            self.label_smoothing == 0.0 or self.loss_type in DPO_SMOOTHED_LOSSES,
            "label_smoothing",
            f"is used only by the {' and '.join(DPO_SMOOTHED_LOSSES)} losses: TRL ignores it "
            f"with loss_type {self.loss_type!r} (set it to 0, or use 'robust' for noisy labels)",
        )
        require(
            self.loss_type != "exo_pair" or self.label_smoothing > 0,
            "label_smoothing",
            "must be > 0 with loss_type 'exo_pair' (TRL refuses 0; the EXO paper uses 1e-3)",
        )
        require(
            not _targets_lm_head(self.lora_target_modules),
            "lora_target_modules",
            "must not name lm_head for DPO: TRL computes log-probs from lm_head.weight and "
            "refuses an adapter there",
        )


@dataclass
class PPORunConfig(_LoraFields):
    """PPO: sampled rollouts, per-token KL penalty, GAE, clipped policy and value losses.

    One step = one rollout of ``rollout_batch_size`` prompts, then ``ppo_epochs`` passes over it
    in minibatches of ``mini_batch_size`` sequences, each split into
    ``gradient_accumulation_steps`` micro-batches.
    """

    learning_rate: float = bound(1e-5, gt=0)
    max_steps: int = bound(100, ge=1)
    rollout_batch_size: int = bound(8, ge=1)
    mini_batch_size: int = bound(4, ge=1)
    gradient_accumulation_steps: int = bound(1, ge=1)
    ppo_epochs: int = bound(4, ge=1)
    max_prompt_length: int = bound(256, ge=1)
    max_new_tokens: int = bound(64, ge=1)
    temperature: float = bound(1.0, gt=0)
    # top_k must stay 0 and top_p 1: log-probs use the full (tempered) softmax
    top_k: int = bound(0, ge=0, le=0, message=_UNTRUNCATED.format(0))
    top_p: float = bound(1.0, ge=1, le=1, message=_UNTRUNCATED.format(1.0))
    gamma: float = bound(1.0, ge=0, le=1)
    lam: float = bound(0.95, ge=0, le=1)
    cliprange: float = bound(0.2, gt=0)
    cliprange_value: float = bound(0.2, gt=0)
    vf_coef: float = bound(0.1, ge=0)
    ent_coef: float = bound(0.0, ge=0)
    kl_coef: float = bound(0.05, ge=0)
    adaptive_kl: bool = False  # Ziegler et al. 2019 proportional controller
    kl_target: float = bound(6.0, gt=0)
    kl_horizon: int = bound(10000, ge=1)
    whiten_rewards: bool = False
    # subtracted from the score of a run-on response
    missing_eos_penalty: float | None = bound(
        None, ge=0, message="must be >= 0 (it is subtracted from the score)"
    )
    normalize_reward: bool = False  # (score - running mean) / running std
    reward_clip_range: list[float] | None = None  # [low, high] clamp of the score, last
    value_init: Literal["fresh", "reward"] = "fresh"  # reward: value from the reward model
    gradient_checkpointing: bool = False  # recompute activations in the update (dropout off)
    max_grad_norm: float = bound(1.0, gt=0)
    value_lora_r: int = bound(8, ge=1)
    reward_batch_size: int = bound(8, ge=1)
    logging_steps: int = bound(1, ge=1)
    # log a few sample completions every N steps (0: never)
    sample_every: int = bound(10, ge=0)
    num_samples: int = bound(2, ge=0)
    ONLY_DDP = "for PPO (its loop all-reduces gradients itself; no ZeRO/FSDP)"

    def _validate(self) -> None:
        super()._validate()
        require(
            self.rollout_batch_size % self.mini_batch_size == 0,
            "mini_batch_size",
            "must divide rollout_batch_size",
        )
        require(
            self.mini_batch_size % self.gradient_accumulation_steps == 0,
            "gradient_accumulation_steps",
            "must divide mini_batch_size",
        )
        clip = self.reward_clip_range
        require(
            clip is None or (len(clip) == 2 and clip[0] < clip[1]),
            "reward_clip_range",
            f"must be [low, high] with low < high, got {clip!r}",
        )


@dataclass
class GenerateRunConfig(Validated):
    """Sampling n completions per prompt (``mix_base``: n from the adapter AND n from the base)."""

    n: int = bound(3, ge=1)
    max_new_tokens: int = bound(128, ge=1)
    temperature: float = bound(0.7, gt=0)
    top_p: float = bound(0.95, gt=0, le=1)
    top_k: int = bound(50, ge=0)
    repetition_penalty: float = bound(1.1, gt=0)
    mix_base: bool = False
    batch_size: int = bound(8, ge=1)
    seed: int = 0
    precision: Precision = "auto"
    prompt_format: PromptFormat = "auto"
    engine: Literal["transformers", "vllm"] = "transformers"  # vllm: the vllm extra, CUDA

    def _validate(self) -> None:
        total = self.n * (2 if self.mix_base else 1)
        require(
            2 <= total <= 9,
            "n",
            f"gives {total} completions a prompt; the import format "
            "takes 2 to 9 (with mix_base, n from each model)",
        )


@dataclass
class SuspectsRunConfig(RewardRunConfig):
    """Likely mislabels: ``folds`` reward models, each trained on the other folds' prompts,
    score every pair out of fold (``training.suspects``). Each fold's held-out prompts are its
    evaluation, so ``eval_fraction`` and ``dev_fraction`` stay 0."""

    eval_fraction: float = bound(0.0, ge=0, le=0, message=_FOLDS_EVALUATE)
    dev_fraction: float = bound(0.0, ge=0, le=0, message=_FOLDS_EVALUATE)
    folds: int = bound(2, ge=2, le=20, message="must be from 2 to 20")


RunConfig = RewardRunConfig | DPORunConfig | PPORunConfig | GenerateRunConfig | SuspectsRunConfig
CONFIG_CLASSES: dict[RunKind, type] = {
    RunKind.reward: RewardRunConfig,
    RunKind.dpo: DPORunConfig,
    RunKind.ppo: PPORunConfig,
    RunKind.generate: GenerateRunConfig,
    RunKind.suspects: SuspectsRunConfig,
}
"""The config class of each run kind (a ``RunKind`` is a ``str``: ``"dpo"`` finds it too)."""


def config_class(kind: str) -> type:
    """The config class of ``kind``; ``ConfigError`` (field ``kind``) for an unknown kind."""
    if kind not in CONFIG_CLASSES:
        names = sorted(k.value for k in CONFIG_CLASSES)
        raise ConfigError("kind", f"kind must be one of {names}, got {kind!r}")
    return CONFIG_CLASSES[kind]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON file holding one mapping of fields."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file", f"config file {path} does not exist")
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
        raise ConfigError("file", f"config file {path} must hold a mapping of fields, got {kind}")
    return data


def build_config(
    kind: str,
    preset: str | None = None,
    file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a configuration for ``kind``: defaults < preset < file < overrides.

    Raises ``ConfigError`` (a ``ValueError``) for an unknown kind, preset or field, or an
    invalid value; its ``field`` names what was refused.
    """
    cls = config_class(kind)
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError("preset", f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        if kind not in PRESETS[preset]:
            kinds = ", ".join(sorted(PRESETS[preset]))
            raise ConfigError("preset", f"preset {preset!r} is for {kinds} runs, not {kind}")
        values.update(PRESETS[preset][kind])
    if file is not None:
        values.update(load_config_file(Path(file)))
    values.update(overrides or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            unknown[0],
            f"unknown field(s) for {kind}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})",
        )
    return cls(**values)


def coerce_config(kind: str, config: dict[str, Any] | RunConfig | None) -> RunConfig:
    """Accept a ready config of the right class, or a dict of overrides on the defaults."""
    if config is None or isinstance(config, dict):
        return build_config(kind, overrides=config or {})
    if not isinstance(config, config_class(kind)):
        raise ConfigError(
            "config",
            f"config for {kind} must be a {CONFIG_CLASSES[kind].__name__} or a dict, "
            f"got {type(config).__name__}",
        )
    return config


__all__ = [
    "CONFIG_CLASSES",
    "config_class",
    "ConfigError",
    "DPORunConfig",
    "GenerateRunConfig",
    "PPORunConfig",
    "PRESETS",
    "RewardRunConfig",
    "RunConfig",
    "SuspectsRunConfig",
    "build_config",
    "coerce_config",
    "load_config_file",
]

"""Presets: overrides per kind, applied over the defaults and under a config file.

- ``tiny-cpu``: tiny CPU smoke (a few steps, rank 4, short sequences);
- ``small-gpu``: a ~0.1–1B model on one GPU (bf16);
- ``7b-24gb``: 7B on one 24 GB GPU (bf16 base ~14 GB, LoRA, gradient checkpointing, batch 1);
- ``encoder-cpu``: reward only: a small encoder (all-MiniLM-L6-v2, 22M) fully fine-tuned on a CPU
  in about a minute (the demo's public pairs; short left-truncated pairs, a fixed step budget).
"""

from typing import Any

_TINY_TRAIN = {
    "max_steps": 5,
    "per_device_batch_size": 2,
    "logging_steps": 1,
    "max_length": 128,
    "lora_r": 4,
    "lora_alpha": 8,
    "precision": "fp32",
}
_SMALL_TRAIN = {
    "per_device_batch_size": 8,
    "max_length": 512,
    "lora_r": 16,
    "lora_alpha": 32,
    "precision": "bf16",
}
_7B_TRAIN = {
    "per_device_batch_size": 1,
    "gradient_accumulation_steps": 16,
    "max_length": 1024,
    "lora_r": 16,
    "lora_alpha": 32,
    "gradient_checkpointing": True,
    "precision": "bf16",
}
_ENCODER_REWARD = {
    "full_finetune": True,
    "max_steps": 36,
    "per_device_batch_size": 16,
    "learning_rate": 1e-4,
    "warmup_ratio": 0.1,
    "max_length": 64,
    "eval_fraction": 0.2,
    "logging_steps": 4,
    "precision": "fp32",
}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny-cpu": {
        "reward": _TINY_TRAIN,
        "dpo": _TINY_TRAIN,
        "ppo": {
            "max_steps": 3,
            "rollout_batch_size": 4,
            "mini_batch_size": 2,
            "ppo_epochs": 1,
            "max_new_tokens": 8,
            "lora_r": 4,
            "lora_alpha": 8,
            "value_lora_r": 4,
            "precision": "fp32",
            "sample_every": 1,
        },
        "generate": {"n": 2, "max_new_tokens": 16, "batch_size": 4, "precision": "fp32"},
    },
    "small-gpu": {
        "reward": _SMALL_TRAIN,
        "dpo": _SMALL_TRAIN,
        "ppo": {
            "rollout_batch_size": 32,
            "mini_batch_size": 8,
            "max_new_tokens": 96,
            "learning_rate": 2e-5,
            "precision": "bf16",
        },
        "generate": {"batch_size": 32, "max_new_tokens": 256, "precision": "bf16"},
    },
    "7b-24gb": {
        "reward": _7B_TRAIN,
        "dpo": _7B_TRAIN,
        "ppo": {
            "rollout_batch_size": 8,
            "mini_batch_size": 4,
            "gradient_accumulation_steps": 4,
            "max_prompt_length": 512,
            "max_new_tokens": 128,
            "reward_batch_size": 2,
            "lora_r": 16,
            "lora_alpha": 32,
            "value_lora_r": 8,
            "gradient_checkpointing": True,
            "precision": "bf16",
        },
        "generate": {"batch_size": 4, "max_new_tokens": 256, "precision": "bf16"},
    },
    "encoder-cpu": {"reward": _ENCODER_REWARD},
}
# A suspects run trains reward models: the reward settings, less the held-out splits (each
# fold's held-out prompts are its evaluation, so the run refuses eval and dev fractions).
_FOLD_EVALUATED = ("eval_fraction", "dev_fraction", "early_stopping_patience")
for _kinds in PRESETS.values():
    _kinds["suspects"] = {k: v for k, v in _kinds["reward"].items() if k not in _FOLD_EVALUATED}

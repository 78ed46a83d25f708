"""PPO's reward function: the reward run as a frozen adapter on the policy's base when it can
share it (``PolicyValueModel.attach_reward``), else a separate reward model, whose memory is
said in the log (and the run's README) or refused when it cannot fit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from training.ppo_models import PolicyValueModel, SharedBaseReward, same_base

log = logging.getLogger("training.ppo")
GIB = 1024**3


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CUDA: the allocator's view; CPU: MemAvailable), or None."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def copy_bytes(model: torch.nn.Module, dtype: torch.dtype) -> int:
    """Bytes of a second copy of ``model``'s frozen weights in ``dtype``."""
    size = torch.empty((), dtype=dtype).element_size()
    names = ("lora_", "value_head", "reward_head")
    return sum(
        p.numel() * size for n, p in model.named_parameters() if not any(k in n for k in names)
    )


def _separate(
    run_dir: Path, why: str, estimate: int | None, device: torch.device, dtype: Any, batch: int
) -> tuple[Any, str]:
    """Load the reward run as its own model (refused when ``estimate`` cannot fit)."""
    from training.reward_model import RewardScorer

    free = free_memory(device)
    if estimate is not None and free is not None and estimate > free:
        raise RuntimeError(
            f"reward: the reward run {run_dir} cannot share the policy's base because {why}, "
            f"and a separate copy needs ~{estimate / GIB:.2f} GiB on {device} where "
            f"{free / GIB:.2f} GiB are free. Retrain the reward model with LoRA only (no "
            "modules_to_save), or give PPO a device with more memory."
        )
    scorer = RewardScorer(run_dir, device=device, batch_size=batch, dtype=dtype)
    used = sum(p.numel() * p.element_size() for p in scorer.model.parameters())
    note = (
        f"Reward model loaded separately ({used / GIB:.3f} GiB more on {device}): "
        f"it cannot share the policy's base because {why}."
    )
    log.warning(note)
    return scorer, note


def build_reward_fn(
    model: PolicyValueModel,
    model_name: str,
    reward: Path,
    device: torch.device,
    dtype: Any,
    batch_size: int,
) -> tuple[Any, str]:
    """(reward function, a note for the run's README: empty when the base is shared)."""
    if not same_base(reward, model_name):
        return _separate(reward, "it was trained on another base", None, device, dtype, batch_size)
    why = model.attach_reward(reward)
    if why is None:
        return SharedBaseReward(model, reward, batch_size), ""
    return _separate(reward, why, copy_bytes(model.peft, dtype), device, dtype, batch_size)

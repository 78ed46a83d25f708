"""Prefloop training: export folder -> reward model, DPO or PPO policy (LoRA adapters), and
next-round completions. Importing this package does not import torch.

Public API: ``run``, ``Callbacks``, ``RunResult``, ``Cancelled``, ``build_config``.
"""

from training.api import run
from training.config import build_config
from training.runtime import Callbacks, Cancelled, RunResult

__all__ = ["Callbacks", "Cancelled", "RunResult", "build_config", "run"]

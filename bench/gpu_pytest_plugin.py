"""pytest plugin of ``bench/gpu_check.sh``: the training tests in bf16 on the lent GPU.

Loaded with ``-p gpu_pytest_plugin`` (``bench/`` on ``PYTHONPATH``). With
``PREFLOOP_TEST_DTYPE=bf16`` every run's ``precision`` resolves to bf16 whatever its config
says (the tiny presets and tests ask for fp32); runs already pick CUDA when it is available
(TRL trainers, PPO's accelerator, ``generate``). ``PREFLOOP_TEST_DEVICE=cuda`` makes the session
fail at once when CUDA is missing, so a GPU check never passes on CPU by accident. The header
line of the pytest report says what was in effect.
"""

from __future__ import annotations

import os
from typing import Any


def _forced_bf16(precision: str) -> tuple[Any, bool]:
    import torch

    return torch.bfloat16, True


def pytest_configure(config: Any) -> None:
    import pytest

    if os.environ.get("PREFLOOP_TEST_DEVICE") == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError("PREFLOOP_TEST_DEVICE=cuda but torch sees no CUDA device")
    dtype = os.environ.get("PREFLOOP_TEST_DTYPE", "")
    if dtype not in ("", "fp32", "bf16"):
        raise pytest.UsageError(f"PREFLOOP_TEST_DTYPE must be fp32 or bf16, got {dtype!r}")
    if dtype == "bf16":
        import training.ppo
        import training.runtime

        # every caller reads it at call time from one of these two modules
        training.runtime.resolve_precision = _forced_bf16
        training.ppo.resolve_precision = _forced_bf16


def pytest_report_header(config: Any) -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    dtype = os.environ.get("PREFLOOP_TEST_DTYPE") or "as configured"
    return f"prefloop training tests: device {device}, precision {dtype}"

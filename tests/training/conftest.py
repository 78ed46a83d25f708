"""Tiny models built from configs, a word-level tokenizer made on the fly, export writers."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.families import FAMILIES
from training.tiny import MARKER, WORDS, build_tiny_causal_lm, make_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[2]
SMOLLM2 = REPO / "models" / "SmolLM2-135M-Instruct"


def build_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """The tiny Llama of ``training.tiny`` (fixed vocabulary), in ``folder``."""
    return build_tiny_causal_lm(folder, seed)


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = make_tokenizer(bert=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_export(folder: Path, rows: list[dict[str, Any]], **manifest: Any) -> Path:
    """An export folder (SPEC §5) whose manifest holds the right sha256 of pairs.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    (folder / "pairs.jsonl").write_bytes(body)
    prompts = {r.get("prompt_id") for r in rows}
    base = {
        "format_version": 1,
        "project": "test",
        "created_at": "2025-01-01T00:00:00Z",
        "strategy": "consensus",
        "filters": {},
        "counts": {"prompts": len(prompts), "judgments": len(rows), "pairs": len(rows)},
        "agreement": {},
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    (folder / "manifest.json").write_text(json.dumps({**base, **manifest}), encoding="utf-8")
    return folder


def _sentence(rng: random.Random, n: int, marker: bool) -> str:
    words = rng.sample(WORDS, n)
    if marker:
        words.insert(rng.randrange(n + 1), MARKER)
    return " ".join(words)


def marker_rows(
    n_prompts: int, pairs_per_prompt: int = 2, seed: int = 0, chat: bool = False
) -> list[dict[str, Any]]:
    """Toy preference: the completion holding MARKER is always chosen."""
    rng = random.Random(seed)
    rows = []
    for p in range(n_prompts):
        text = f"tell me about {rng.choice(WORDS)} {rng.choice(WORDS)}"
        prompt: Any = [{"role": "user", "content": text}] if chat else text + " ."
        for j in range(pairs_per_prompt):
            n = rng.randint(3, 6)
            chosen, rejected = _sentence(rng, n, True), _sentence(rng, n + 1, False)
            if chat:
                chosen = [{"role": "assistant", "content": chosen}]
                rejected = [{"role": "assistant", "content": rejected}]
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "margin": 0.5,
                    "prompt_id": f"p{p}",
                    "chosen_id": f"a{j}",
                    "rejected_id": f"b{j}",
                    "votes_for": 2,
                    "votes_against": 1,
                    "votes_tie": 0,
                    "n_judgments": 3,
                    "agreement": 0.67,
                }
            )
    return rows


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models run many small ops: one thread avoids oversubscription on 2 shared cores
    (10x+ faster here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Capture:
    """Wraps a module-level function and keeps what each call returned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.results: list[Any] = []
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.results.append(result)
            return result

        monkeypatch.setattr(module, name, wrapper)


def snapshot(module: Any) -> list[tuple[Any, Any]]:
    """(parameter, copy of its value) for every parameter, to compare after training."""
    return [(p, p.detach().clone()) for p in module.parameters()]


def unchanged(saved: list[tuple[Any, Any]]) -> bool:
    import torch

    return all(torch.equal(p.detach(), value) for p, value in saved)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def marker_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("export"), marker_rows(40, chat=True))


@pytest.fixture(scope="session")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("export-small"), marker_rows(6))


@pytest.fixture(scope="session")
def family_model(tmp_path_factory: pytest.TempPathFactory):
    """``family_model(name) -> folder`` of a tiny model of that family (``FAMILIES``: llama3,
    gemma, qwen25, mistral), built once per session."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = FAMILIES[name].build(tmp_path_factory.mktemp(f"family-{name}"))
        return built[name]

    return get

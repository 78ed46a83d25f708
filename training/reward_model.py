"""Reward-model plumbing shared by training, loading and scoring.

- A distinct pad token on causal-LM backbones: their sequence-classification head reads the
  last non-pad token, so pad must not equal EOS.
- ``encode_for_reward``: EOS appended (when the tokenizer has one), then LEFT-truncated so the
  end of the conversation, where chosen and rejected differ, is kept; special tokens such as
  BERT's [CLS]/[SEP] are added by the tokenizer after truncation, and a BOS the chat template
  already wrote is not added twice (``training.chat.encode``).
- ``RewardScorer``: loads a reward run folder and scores (prompt, completion) texts with the
  same rendering as training (usable as PPO's reward function).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.chat import Prompt, encode, render_completion, render_prompt
from training.runtime import ADAPTER_DIR, RUN_CONFIG

_PAD_FALLBACK = "<|pad|>"


def ensure_distinct_pad(tokenizer: Any) -> bool:
    """Give ``tokenizer`` a pad token different from EOS; return True when a token was added
    (the model's embeddings must then be resized to ``len(tokenizer)``)."""
    eos = tokenizer.eos_token
    if tokenizer.pad_token is not None and tokenizer.pad_token != eos:
        return False
    candidates = [
        t
        for t in (tokenizer.unk_token, *tokenizer.all_special_tokens)
        if t is not None and t not in (eos, tokenizer.bos_token)
    ]
    if candidates:
        tokenizer.pad_token = candidates[0]
        return False
    tokenizer.add_special_tokens({"pad_token": _PAD_FALLBACK})
    return True


def encode_for_reward(tokenizer: Any, text: str, max_length: int) -> list[int]:
    """Token ids of ``text`` (+ EOS), left-truncated to ``max_length`` tokens."""
    eos = tokenizer.eos_token
    if eos and not text.endswith(eos):
        text = text + eos
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        return encode(tokenizer, text, truncation=True, max_length=max_length)
    finally:
        tokenizer.truncation_side = side


def reward_text(
    tokenizer: Any, prompt: Prompt, completion: str, prompt_format: str = "auto"
) -> str:
    """The full text a reward model scores for (prompt, completion)."""
    return render_prompt(tokenizer, prompt, prompt_format) + render_completion(
        tokenizer, prompt, completion, prompt_format
    )


def read_run_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a run folder: {RUN_CONFIG} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def load_reward_model(run_dir: Path, dtype: Any = None, base_model: str | None = None):
    """Load (model, tokenizer) of a reward run folder: base + LoRA adapter, or the whole model
    of a ``full_finetune`` run; ``base_model`` overrides the recorded base of an adapter (e.g.
    when the folder moved to another machine)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    info = read_run_config(run_dir)
    if info.get("kind") != "reward":
        raise ValueError(f"{run_dir} holds a {info.get('kind')!r} run, not a reward model")
    adapter = Path(run_dir) / ADAPTER_DIR
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    full = not (adapter / "adapter_config.json").is_file()  # full_finetune: the whole model
    base = AutoModelForSequenceClassification.from_pretrained(
        adapter if full else (base_model or info["model"]),
        num_labels=1,
        dtype=dtype or torch.float32,
    )
    if base.get_input_embeddings().num_embeddings < len(tokenizer):
        base.resize_token_embeddings(len(tokenizer))
    base.config.pad_token_id = tokenizer.pad_token_id
    model = base if full else PeftModel.from_pretrained(base, adapter)
    model.eval()
    return model, tokenizer


class RecordedScoring:
    """How a reward run turns (prompt, completion) into a score input: its tokenizer, max
    length and prompt format, as recorded in the run folder; scores come in batches from
    ``score_batch(input_ids, attention_mask) -> tensor``."""

    def __init__(self, run_dir: Path, tokenizer: Any, batch_size: int) -> None:
        recorded = read_run_config(run_dir)["config"]
        self.tokenizer, self.batch_size = tokenizer, batch_size
        self.max_length = int(recorded.get("max_length", 512))
        self.prompt_format = str(recorded.get("prompt_format", "auto"))

    def scores(
        self, prompts: list[Prompt], completions: list[str], device: Any, score_batch: Any
    ) -> list[float]:
        import torch

        tok = self.tokenizer
        ids = [
            encode_for_reward(tok, reward_text(tok, p, c, self.prompt_format), self.max_length)
            for p, c in zip(prompts, completions, strict=True)
        ]
        scores: list[float] = []
        for start in range(0, len(ids), self.batch_size):
            batch = tok.pad(
                {"input_ids": ids[start : start + self.batch_size]},
                padding=True,
                return_tensors="pt",
            ).to(device)
            with torch.no_grad():
                scores.extend(score_batch(batch["input_ids"], batch["attention_mask"]).tolist())
        return scores


class RewardScorer:
    """``scorer(prompts, completions) -> list[float]`` from a reward run folder."""

    def __init__(
        self, run_dir: Path, device: Any = "cpu", batch_size: int = 8, dtype: Any = None
    ) -> None:
        self.model, tokenizer = load_reward_model(run_dir, dtype=dtype)
        self.model.to(device)
        self.device = device
        self.scoring = RecordedScoring(run_dir, tokenizer, batch_size)

    def _score_batch(self, input_ids: Any, attention_mask: Any) -> Any:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits[:, 0].float()

    def __call__(self, prompts: list[Prompt], completions: list[str]) -> list[float]:
        return self.scoring.scores(prompts, completions, self.device, self._score_batch)

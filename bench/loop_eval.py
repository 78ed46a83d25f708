"""Model-side measurements of ``bench/loop_improves.py`` (imports torch): DPO implicit-reward
accuracy of a trained adapter against its reference (the adapter switched off), and judge
scores of generated completions.

The DPO pairs are rendered by ``training.dpo.dpo_examples`` (what ``prefloop train dpo``
trains on) and tokenized as TRL 1.16 does (prompt + completion as one text; the completion
starts where it diverges from the tokenized prompt), cut to ``max_length`` from the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def pair_sequences(
    tokenizer: Any, rows: list[dict[str, Any]], max_length: int
) -> list[tuple[list[int], int]]:
    """``(ids, prompt_len)`` for chosen then rejected of each row, as DPO sees them."""
    from training.config import DPORunConfig
    from training.dpo import dpo_examples

    out = []
    for example in dpo_examples(tokenizer, rows, DPORunConfig(max_length=max_length)):
        prompt_ids = tokenizer(example["prompt"])["input_ids"]
        for key in ("chosen", "rejected"):
            ids = tokenizer(example["prompt"] + example[key])["input_ids"]
            start = min(_common_prefix(prompt_ids, ids), max_length - 1)
            out.append((ids[:max_length], start))
    return out


def sequence_logps(model: Any, seqs: list[tuple[list[int], int]], pad_id: int, batch: int):
    """Sum of the completion tokens' log-probabilities for each ``(ids, prompt_len)``."""
    import torch

    totals: list[float] = []
    for start in range(0, len(seqs), batch):
        chunk = seqs[start : start + batch]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        scored = torch.zeros((len(chunk), width), dtype=torch.bool)
        for row, (seq, prompt_len) in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            attention[row, : len(seq)] = 1
            scored[row, prompt_len : len(seq)] = True
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
        totals.extend((logp * scored[:, 1:]).sum(1).tolist())
    return totals


def implicit_reward_accuracy(
    base: str, adapter: Path, rows: list[dict[str, Any]], max_length: int, batch: int = 8
) -> dict[str, Any]:
    """Implicit-reward margins ``(log π − log π_ref)(chosen) − (…)(rejected)`` per pair for
    the adapter at ``adapter`` (β only scales them, so accuracies do not depend on it), plus
    the reference's own log-likelihood preference (``log π_ref`` chosen > rejected)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    seqs = pair_sequences(tokenizer, rows, max_length)
    policy = sequence_logps(model, seqs, tokenizer.pad_token_id, batch)
    with model.disable_adapter():
        reference = sequence_logps(model, seqs, tokenizer.pad_token_id, batch)
    ratio = [p - r for p, r in zip(policy, reference, strict=True)]
    return {
        "margins": [ratio[i] - ratio[i + 1] for i in range(0, len(ratio), 2)],
        "reference_margins": [reference[i] - reference[i + 1] for i in range(0, len(ratio), 2)],
    }


def judge_scores(judge_run: Path, prompts: list[Any], completions: list[str]) -> list[float]:
    """The judge reward model's score of each (prompt, completion)."""
    from training.reward_model import RewardScorer

    return RewardScorer(judge_run, batch_size=16)(prompts, completions)


def token_lengths(base: str, texts: list[str]) -> list[int]:
    """Length of each text in the policy tokenizer's tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

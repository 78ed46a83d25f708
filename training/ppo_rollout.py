"""PPO rollouts: sample completions from the policy, score them, and compute everything the
update needs (old log-probs, reference log-probs, values, KL-penalized rewards, GAE)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from training.config import PPORunConfig
from training.data import Prompt, encode_prompts
from training.ppo_math import (
    gae,
    kl_penalized_rewards,
    logprobs_from_logits,
    masked_whiten,
    response_mask,
)
from training.ppo_models import PolicyValueModel

RewardFn = Callable[[list[Prompt], list[str]], list[float]]


@dataclass
class Rollout:
    """One batch of experience. Per-token tensors are (B, response_length)."""

    query_ids: torch.Tensor  # (B, Lq) left-padded
    query_mask: torch.Tensor
    response_ids: torch.Tensor
    mask: torch.Tensor  # real response tokens (through the first EOS)
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor  # (B,) reward-model scores
    kl: torch.Tensor  # per-token log π - log π_ref (masked)
    advantages: torch.Tensor  # whitened
    returns: torch.Tensor
    prompts: list[Prompt]
    completions: list[str]

    def full(self, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of query + response for the given rows."""
        ids = torch.cat([self.query_ids[rows], self.response_ids[rows]], dim=1)
        attention = torch.cat([self.query_mask[rows], self.mask[rows].long()], dim=1)
        return ids, attention


def response_logits(logits: torch.Tensor, query_length: int, temperature: float) -> torch.Tensor:
    """Logits that predict the response tokens, scaled as during sampling."""
    return logits[:, query_length - 1 : -1] / temperature


def _sample(
    model: PolicyValueModel, tokenizer: Any, batch: dict[str, torch.Tensor], config: PPORunConfig
) -> torch.Tensor:
    from transformers import GenerationConfig

    generation = GenerationConfig(
        do_sample=True,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    out = model.generate(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        generation_config=generation,
    )
    return out[:, batch["input_ids"].shape[1] :]


@torch.no_grad()
def _forward_stats(
    model: PolicyValueModel,
    ids: torch.Tensor,
    attention: torch.Tensor,
    query_length: int,
    temperature: float,
):
    tokens = ids[:, query_length:]
    logits = response_logits(model.policy_logits(ids, attention), query_length, temperature)
    ref = response_logits(model.reference_logits(ids, attention), query_length, temperature)
    values = model.values(ids, attention)[:, query_length - 1 : -1]
    return logprobs_from_logits(logits, tokens), logprobs_from_logits(ref, tokens), values


def collect_rollout(
    model: PolicyValueModel,
    tokenizer: Any,
    prompts: list[Prompt],
    reward_fn: RewardFn,
    kl_coef: float,
    config: PPORunConfig,
) -> Rollout:
    """Sample, score and evaluate one batch of prompts; compute advantages and returns."""
    device = model.value_head.weight.device
    batch = encode_prompts(tokenizer, prompts, config.max_prompt_length, device)
    with torch.no_grad():
        response = _sample(model, tokenizer, batch, config)
    mask = response_mask(response, tokenizer.eos_token_id)
    query_length = batch["input_ids"].shape[1]
    ids = torch.cat([batch["input_ids"], response], dim=1)
    attention = torch.cat([batch["attention_mask"], mask.long()], dim=1)
    chunk = config.mini_batch_size // config.gradient_accumulation_steps
    parts = [
        _forward_stats(
            model, ids[i : i + chunk], attention[i : i + chunk], query_length, config.temperature
        )
        for i in range(0, ids.shape[0], chunk)
    ]
    logprobs, ref_logprobs, values = (torch.cat(p) for p in zip(*parts, strict=True))
    completions = [
        tokenizer.decode(r[m.bool()], skip_special_tokens=True).strip()
        for r, m in zip(response, mask, strict=True)
    ]
    scores = torch.tensor(reward_fn(prompts, completions), dtype=torch.float32, device=device)
    rewards, kl = kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef)
    if config.whiten_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False)
    advantages, returns = gae(rewards, values * mask, mask, config.gamma, config.lam)
    return Rollout(
        query_ids=batch["input_ids"],
        query_mask=batch["attention_mask"],
        response_ids=response,
        mask=mask,
        logprobs=logprobs,
        ref_logprobs=ref_logprobs,
        values=values * mask,
        scores=scores,
        kl=kl,
        advantages=masked_whiten(advantages, mask),
        returns=returns,
        prompts=prompts,
        completions=completions,
    )

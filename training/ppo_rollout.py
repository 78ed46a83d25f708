"""PPO rollouts: sample completions from the policy, score them, and compute everything the
update needs (old log-probs, reference log-probs, values, KL-penalized rewards, GAE)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from training.chat import base_of, own_generation_defaults, sampling_config, stop_token_ids
from training.config import PPORunConfig
from training.data import Prompt, encode_prompts
from training.ppo_math import (
    ended_with_stop,
    gae,
    kl_penalized_rewards,
    logprobs_from_logits,
    masked_whiten,
    response_mask,
)
from training.ppo_models import PolicyValueModel

RewardFn = Callable[[list[Prompt], list[str]], list[float]]
ScoreShaper = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (scores, ended) -> scores


@dataclass
class Rollout:
    """One batch of experience. Per-token tensors are (B, response_length)."""

    query_ids: torch.Tensor  # (B, Lq) left-padded
    query_mask: torch.Tensor
    response_ids: torch.Tensor
    mask: torch.Tensor  # real response tokens (through the first stop token)
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor  # (B,) reward-model scores
    kl: torch.Tensor  # per-token log π - log π_ref (masked)
    advantages: torch.Tensor  # whitened
    returns: torch.Tensor
    prompts: list[Prompt]
    completions: list[str]
    raw_scores: torch.Tensor | None = None  # the reward function's, before ``shape``
    ended: torch.Tensor | None = None  # (B,) bool: the response ended with a stop token

    def full(self, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of query + response for the given rows."""
        ids = torch.cat([self.query_ids[rows], self.response_ids[rows]], dim=1)
        attention = torch.cat([self.query_mask[rows], self.mask[rows].long()], dim=1)
        return ids, attention


def response_logits(logits: torch.Tensor, query_length: int, temperature: float) -> torch.Tensor:
    """Logits that predict the response tokens, scaled as during sampling."""
    return logits[:, query_length - 1 : -1] / temperature


def stop_mask(response: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first stop token (any of ``stop_ids``), else 0."""
    if not stop_ids:
        return response_mask(response, None)
    stops = torch.tensor(stop_ids, device=response.device)
    unified = response.masked_fill(torch.isin(response, stops), stop_ids[0])
    return response_mask(unified, stop_ids[0])


def rollout_generation_config(tokenizer: Any, stop_ids: list[int], config: PPORunConfig) -> Any:
    """Sampling = the distribution PPO's log-probs use: softmax(logits / temperature), with
    ``top_k``/``top_p`` from the config (neutral by default) and every other processor neutral;
    nothing comes from the model's generation_config.json."""
    return sampling_config(
        stop_ids,
        tokenizer.pad_token_id,
        config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
    )


def _sample(
    model: PolicyValueModel,
    tokenizer: Any,
    batch: dict[str, torch.Tensor],
    config: PPORunConfig,
    stop_ids: list[int],
) -> torch.Tensor:
    generation = rollout_generation_config(tokenizer, stop_ids, config)
    with own_generation_defaults(model.peft):
        out = model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            generation_config=generation,
        )
    return out[:, batch["input_ids"].shape[1] :]


def rollout_stop_ids(model: PolicyValueModel, tokenizer: Any) -> list[int]:
    """The policy's stop ids (see ``training.chat.stop_token_ids``)."""
    return stop_token_ids(tokenizer, base_of(model.peft).generation_config)


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
    shape: ScoreShaper | None = None,
) -> Rollout:
    """Sample, score and evaluate one batch of prompts; compute advantages and returns.
    ``shape`` turns the reward function's scores into the ones optimised (see
    ``ppo_math.shape_scores``), knowing which responses ended with a stop token."""
    device = model.value_head.weight.device
    batch = encode_prompts(
        tokenizer, prompts, config.max_prompt_length, device, config.prompt_format
    )
    stop_ids = rollout_stop_ids(model, tokenizer)
    with torch.no_grad():
        response = _sample(model, tokenizer, batch, config, stop_ids)
    mask = stop_mask(response, stop_ids)
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
    raw = torch.tensor(reward_fn(prompts, completions), dtype=torch.float32, device=device)
    ended = ended_with_stop(response, mask, stop_ids)
    scores = raw if shape is None else shape(raw, ended)
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
        raw_scores=raw,
        ended=ended,
    )

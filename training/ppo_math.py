"""PPO arithmetic on tensors, free of models: easy to check against hand-computed values.

Shapes: ``(batch, response_length)`` per-token tensors with a 0/1 ``mask`` marking real
response tokens (up to and including the first EOS).

References: Schulman et al. 2017 (PPO: clipped surrogate, value clipping as in OpenAI
baselines), Schulman et al. 2016 (GAE), Ziegler et al. 2019 (per-token KL penalty, adaptive
KL coefficient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of the masked entries."""
    mean = masked_mean(values, mask)
    count = mask.sum()
    var = masked_mean((values - mean) ** 2, mask)
    return var * count / (count - 1).clamp(min=1)


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True
) -> torch.Tensor:
    """(x - mean) / std over the masked entries; ``shift_mean=False`` adds the mean back."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    return (whitened if shift_mean else whitened + mean) * mask


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(token) per position; ``logits`` (B, T, V), ``tokens`` (B, T)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return torch.gather(logp, 2, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def response_mask(tokens: torch.Tensor, eos_token_id: int | None) -> torch.Tensor:
    """1 for tokens up to and including the first EOS, 0 after it."""
    if eos_token_id is None:
        return torch.ones_like(tokens, dtype=torch.float32)
    is_eos = (tokens == eos_token_id).long()
    after_first_eos = (torch.cumsum(is_eos, dim=1) - is_eos) > 0
    return (~after_first_eos).float()


def ended_with_stop(tokens: torch.Tensor, mask: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """(B,) bool: whether each response's last real token is a stop token; False means it hit
    the length limit without one (``mask`` runs through the first stop token)."""
    if not stop_ids:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    lengths = mask.sum(1).long()
    last = tokens.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    return torch.isin(last, torch.tensor(stop_ids, device=tokens.device)) & (lengths > 0)


def kl_penalized_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards ``-kl_coef * (log π - log π_ref)``, plus the sequence score on each
    sequence's last real token. Returns ``(rewards, kl)`` (both masked)."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation. Returns ``(advantages, returns)``; masked positions
    have value 0 and the value after the last token is 0 (episode end)."""
    rewards, values = rewards * mask, values * mask
    length = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        advantages[:, t] = last
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def clipped_policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO clipped surrogate. Returns ``(loss, clip_fraction, approx_kl)`` where approx_kl is
    ``0.5 * E[(log π_new - log π_old)^2]``."""
    log_ratio = new_logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio**2, mask)
    return loss, clip_fraction.detach(), approx_kl.detach()


def clipped_value_loss(
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``0.5 * E[max((v - R)^2, (clip(v, v_old ± c) - R)^2)]``; returns (loss, clip_fraction)."""
    clipped = old_values + torch.clamp(new_values - old_values, -cliprange_value, cliprange_value)
    loss_unclipped = (new_values - returns) ** 2
    loss_clipped = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    return loss, masked_mean((loss_clipped > loss_unclipped).float(), mask).detach()


@dataclass
class KLController:
    """KL coefficient: fixed, or adaptive (Ziegler et al. 2019): after each batch,
    ``coef *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon``."""

    value: float
    adaptive: bool = False
    target: float = 6.0
    horizon: int = 10000

    def update(self, current_kl: float, n_steps: int) -> None:
        if not self.adaptive:
            return
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


@dataclass
class RunningMoments:
    """Mean and standard deviation of every score seen so far (Chan et al.'s parallel update,
    as TRL's ``RunningMoments`` and OpenRLHF's running reward normalisation)."""

    mean: float = 0.0
    var: float = 0.0  # population variance
    count: int = 0

    def update(self, values: torch.Tensor) -> None:
        values = values.detach().double().flatten()
        n = values.numel()
        if n == 0:
            return
        batch_mean, batch_var = values.mean().item(), values.var(unbiased=False).item()
        total = self.count + n
        delta = batch_mean - self.mean
        self.var = (
            self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        ) / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        """Unbiased standard deviation (1 before two values are seen)."""
        if self.count < 2:
            return 1.0
        return math.sqrt(self.var * self.count / (self.count - 1))


def shape_scores(
    scores: torch.Tensor,
    ended: torch.Tensor,
    missing_eos_penalty: float | None = None,
    moments: RunningMoments | None = None,
    clip_range: list[float] | None = None,
    all_scores: torch.Tensor | None = None,
) -> torch.Tensor:
    """The sequence scores PPO optimises, from the reward model's: with ``moments``,
    ``(score - running mean) / running std`` (the statistics first take in this batch, or
    ``all_scores``: every process's batch); then
    ``missing_eos_penalty`` subtracted where ``ended`` is false (the response hit the length
    limit without a stop token, TRL's rule); then clamped to ``clip_range`` [low, high]."""
    shaped = scores.float()
    if moments is not None:
        moments.update(shaped if all_scores is None else all_scores)
        shaped = (shaped - moments.mean) / (moments.std + 1e-8)
    if missing_eos_penalty:
        shaped = shaped - missing_eos_penalty * (~ended.bool()).float()
    if clip_range is not None:
        shaped = shaped.clamp(clip_range[0], clip_range[1])
    return shaped

"""PPO with LoRA, on torch + transformers + PEFT (TRL 1.16 has no PPO trainer).

Each step: sample ``rollout_batch_size`` prompts, generate with the policy adapter, score with
the reward function, compute per-token KL against the adapter-free reference, GAE on the value
adapter's estimates, then ``ppo_epochs`` passes of clipped policy + clipped value updates (with
an entropy bonus) over shuffled minibatches with gradient accumulation. The KL coefficient is
fixed or adaptive (``adaptive_kl``). See ``ppo_models`` for how one base serves every role.

Several GPUs: ``accelerate launch -m training ppo ...``; every process samples its own prompts
and gradients are averaged across processes before each optimizer step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.config import ConfigError, PPORunConfig
from training.data import Prompt
from training.ppo_math import (
    KLController,
    RunningMoments,
    clipped_policy_loss,
    clipped_value_loss,
    entropy_from_logits,
    logprobs_from_logits,
    masked_mean,
    shape_scores,
)
from training.ppo_models import PolicyValueModel, SharedBaseReward
from training.ppo_reward import build_reward_fn
from training.ppo_rollout import RewardFn, Rollout, collect_rollout, response_logits
from training.runtime import Callbacks, Cancelled, RunRecorder, RunResult, resolve_precision

UPDATE_STATS = (
    "policy_loss",
    "value_loss",
    "entropy",
    "clip_fraction",
    "value_clip_fraction",
    "approx_kl",
)


class ScoreShaping:
    """The config's score shaping (``ppo_math.shape_scores``) with its running statistics,
    taken over every process's scores."""

    def __init__(self, config: PPORunConfig, accelerator: Any) -> None:
        self.config, self.accelerator = config, accelerator
        self.moments = RunningMoments() if config.normalize_reward else None

    def __call__(self, scores: torch.Tensor, ended: torch.Tensor) -> torch.Tensor:
        everyone = None
        if self.moments is not None and self.accelerator.num_processes > 1:
            everyone = self.accelerator.gather(scores)
        config = self.config
        return shape_scores(
            scores,
            ended,
            config.missing_eos_penalty,
            self.moments,
            config.reward_clip_range,
            everyone,
        )


@dataclass
class PPOSetup:
    """What the loop needs, built once."""

    model: PolicyValueModel
    tokenizer: Any
    reward_fn: RewardFn
    optimizer: torch.optim.Optimizer
    accelerator: Any
    shaping: ScoreShaping
    notes: str = ""  # for the run's README (e.g. a reward model that could not share the base)


def _micro_step(
    setup: PPOSetup, rollout: Rollout, rows: torch.Tensor, config: PPORunConfig
) -> dict[str, float]:
    """Forward + backward of one micro-batch (policy loss, then value loss)."""
    model, scale = setup.model, 1.0 / config.gradient_accumulation_steps
    ids, attention = rollout.full(rows)
    query_length, mask = rollout.query_ids.shape[1], rollout.mask[rows]
    logits = response_logits(model.policy_logits(ids, attention), query_length, config.temperature)
    new_logprobs = logprobs_from_logits(logits, rollout.response_ids[rows])
    policy_loss, clip_fraction, approx_kl = clipped_policy_loss(
        new_logprobs, rollout.logprobs[rows], rollout.advantages[rows], mask, config.cliprange
    )
    entropy = masked_mean(entropy_from_logits(logits), mask)
    ((policy_loss - config.ent_coef * entropy) * scale).backward()
    values = model.values(ids, attention)[:, query_length - 1 : -1]
    value_loss, value_clip = clipped_value_loss(
        values, rollout.values[rows], rollout.returns[rows], mask, config.cliprange_value
    )
    (config.vf_coef * value_loss * scale).backward()
    return {
        "policy_loss": policy_loss.item(),
        "value_loss": value_loss.item(),
        "entropy": entropy.item(),
        "clip_fraction": clip_fraction.item(),
        "value_clip_fraction": value_clip.item(),
        "approx_kl": approx_kl.item(),
    }


def _optimizer_step(setup: PPOSetup, config: PPORunConfig) -> None:
    accelerator = setup.accelerator
    for group in setup.optimizer.param_groups:
        if accelerator.num_processes > 1:
            for param in group["params"]:
                if param.grad is not None:
                    param.grad = accelerator.reduce(param.grad, reduction="mean")
        torch.nn.utils.clip_grad_norm_(group["params"], config.max_grad_norm)
    setup.optimizer.step()
    setup.optimizer.zero_grad(set_to_none=True)


def ppo_update(setup: PPOSetup, rollout: Rollout, config: PPORunConfig) -> dict[str, float]:
    """``ppo_epochs`` passes over the rollout in minibatches, in train mode (dropout is off,
    so only gradient checkpointing differs); returns mean update statistics."""
    setup.model.train()
    try:
        return _update_passes(setup, rollout, config)
    finally:
        setup.model.eval()


def _update_passes(setup: PPOSetup, rollout: Rollout, config: PPORunConfig) -> dict[str, float]:
    size = rollout.response_ids.shape[0]
    micro = config.mini_batch_size // config.gradient_accumulation_steps
    totals = dict.fromkeys(UPDATE_STATS, 0.0)
    count = 0
    for _ in range(config.ppo_epochs):
        order = torch.randperm(size, device=rollout.response_ids.device)
        for start in range(0, size, config.mini_batch_size):
            minibatch = order[start : start + config.mini_batch_size]
            for offset in range(0, len(minibatch), micro):
                stats = _micro_step(setup, rollout, minibatch[offset : offset + micro], config)
                for key, value in stats.items():
                    totals[key] += value
                count += 1
            _optimizer_step(setup, config)
    return {key: value / max(count, 1) for key, value in totals.items()}


def _display(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else str(prompt[-1].get("content", ""))


def _step_metrics(
    setup: PPOSetup, rollout: Rollout, update: dict[str, float], kl_coef: float
) -> dict[str, float]:
    raw = rollout.scores if rollout.raw_scores is None else rollout.raw_scores
    local = {
        "reward": raw.mean().item(),  # the reward model's; reward_shaped: what PPO optimises
        "reward_std": raw.std().item() if raw.numel() > 1 else 0.0,
        "reward_shaped": rollout.scores.mean().item(),
        "ended_fraction": (
            rollout.ended.float().mean().item() if rollout.ended is not None else float("nan")
        ),
        "kl": rollout.kl.sum(1).mean().item(),
        "response_length": rollout.mask.sum(1).mean().item(),
        **update,
    }
    if setup.accelerator.num_processes > 1:
        device = rollout.scores.device
        stacked = torch.tensor(list(local.values()), device=device)
        local = dict(zip(local, setup.accelerator.reduce(stacked, "mean").tolist(), strict=True))
    return {**local, "kl_coef": kl_coef}


def _reward_and_value(
    model: PolicyValueModel,
    model_name: str,
    config: PPORunConfig,
    reward: Path | RewardFn,
    accelerator: Any,
    dtype: Any,
) -> tuple[RewardFn, str]:
    """The reward function (and a README note), then the value function's start."""
    reward_fn, notes = reward, ""
    if not callable(reward):
        reward_fn, notes = build_reward_fn(
            model, model_name, reward, accelerator.device, dtype, config.reward_batch_size
        )
    if config.value_init == "reward":
        if not isinstance(reward_fn, SharedBaseReward):
            raise ConfigError(
                "value_init",
                "value_init 'reward' starts the value function from the reward model, which "
                "needs a reward run folder trained with LoRA only on this same base"
                + (f" ({notes})" if notes else ""),
            )
        model.init_value_from_reward()
    return reward_fn, notes


def _build(model_name: str, config: PPORunConfig, reward: Path | RewardFn) -> PPOSetup:
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.trl_common import lora_config

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    dtype, _ = resolve_precision(config.precision)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype)
    model = PolicyValueModel(
        base,
        lora_config(config, "CAUSAL_LM"),
        lora_config(config, "CAUSAL_LM", r=config.value_lora_r),
    )
    model.to(accelerator.device).eval()  # rollouts in eval mode; updates in train mode
    if config.gradient_checkpointing:
        model.enable_checkpointing()
    reward_fn, notes = _reward_and_value(model, model_name, config, reward, accelerator, dtype)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.adapter_parameters("default")},
            {"params": [*model.adapter_parameters("value"), *model.value_head.parameters()]},
        ],
        lr=config.learning_rate,
    )
    model.disable_dropout()  # train mode = eval mode: the update sees the rollout's policy
    shaping = ScoreShaping(config, accelerator)
    return PPOSetup(model, tokenizer, reward_fn, optimizer, accelerator, shaping, notes)


def train_ppo(
    prompts: list[dict[str, Any]],
    model: str,
    out: Path,
    config: PPORunConfig,
    reward: Path | RewardFn,
    callbacks: Callbacks | None = None,
    data: dict[str, Any] | None = None,
) -> RunResult:
    """Run PPO on ``prompts`` (``{"id", "prompt"}`` rows); ``reward`` is a reward run folder
    or a callable ``(prompts, completions) -> scores``."""
    from accelerate.utils import set_seed

    set_seed(config.seed)  # same LoRA initialisation on every process
    setup = _build(model, config, reward)
    torch.manual_seed(config.seed + setup.accelerator.process_index)  # distinct samples
    recorder = RunRecorder(out, "ppo", model, config.to_dict(), callbacks, data=data)
    kl = KLController(config.kl_coef, config.adaptive_kl, config.kl_target, config.kl_horizon)
    rng = random.Random(config.seed + setup.accelerator.process_index)
    pool = [p["prompt"] for p in prompts]
    for step in range(1, config.max_steps + 1):
        batch = [pool[rng.randrange(len(pool))] for _ in range(config.rollout_batch_size)]
        rollout = collect_rollout(
            setup.model, setup.tokenizer, batch, setup.reward_fn, kl.value, config, setup.shaping
        )
        metrics = _step_metrics(setup, rollout, ppo_update(setup, rollout, config), kl.value)
        kl.update(metrics["kl"], config.rollout_batch_size * setup.accelerator.num_processes)
        if step % config.logging_steps and step != config.max_steps:
            continue
        samples = None
        if config.sample_every and step % config.sample_every == 0:
            samples = [
                {"prompt": _display(p), "completion": c, "reward": s}
                for p, c, s in zip(
                    rollout.prompts, rollout.completions, rollout.raw_scores.tolist(), strict=True
                )
            ]
            samples = samples[: config.num_samples]
        if recorder.log(step, metrics, samples):
            raise Cancelled(f"run stopped at step {step} on request")
    from training.trl_common import record_trained_weights

    record_trained_weights(setup.model, out, setup.accelerator)
    artifact = recorder.adapter_dir
    if recorder.main:
        artifact = setup.model.save(out, setup.tokenizer)
    return recorder.finish(
        dict(recorder.last_metrics), config.max_steps, artifact, notes=setup.notes
    )

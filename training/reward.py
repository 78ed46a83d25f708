"""Reward model: TRL ``RewardTrainer`` with a LoRA adapter (SEQ_CLS) on any HF backbone.

Bradley–Terry loss ``-log σ(r_chosen - r_rejected [- margin])``; the score head is trained in
full (PEFT's ``modules_to_save``). ``full_finetune`` trains every weight instead (no LoRA; the
run's ``adapter/`` folder then holds the whole model). ``dev_fraction`` carves a dev split from
the training prompts: the weights of its best evaluation are kept (``early_stopping_patience``
stops early), see ``reward_best``; the held-out split is evaluated once, at the end. Pairs are
tokenized here (left-truncated, see ``reward_model.encode_for_reward``) so encoders without EOS
(BERT) and long pairs work.
Held-out pairwise accuracy and mean margin come out as ``eval_accuracy`` / ``eval_margin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import RewardRunConfig
from training.data import ExportData, render_pair, split_by_prompt
from training.reward_model import encode_for_reward, ensure_distinct_pad
from training.runtime import Callbacks, RunResult


def tokenize_pairs(
    tokenizer: Any, rows: list[dict[str, Any]], config: RewardRunConfig
) -> list[dict[str, Any]]:
    """Rows -> ``{"chosen_ids", "rejected_ids"[, "margin"]}`` as RewardTrainer takes them."""
    examples = []
    for row in rows:
        pair = render_pair(tokenizer, row, config.prompt_format)
        example = {
            "chosen_ids": encode_for_reward(
                tokenizer, pair["prompt"] + pair["chosen"], config.max_length
            ),
            "rejected_ids": encode_for_reward(
                tokenizer, pair["prompt"] + pair["rejected"], config.max_length
            ),
        }
        if config.use_margin:
            example["margin"] = config.margin_scale * pair["margin"]
        examples.append(example)
    return examples


def load_backbone(model_name: str, dtype: Any, load_in_4bit: bool = False) -> tuple[Any, Any]:
    """(sequence-classification model with one output, tokenizer with a distinct pad)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.runtime import weight_options

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    added = ensure_distinct_pad(tokenizer)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name, num_labels=1, **weight_options(dtype, load_in_4bit)
    )
    if added:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def top_layer_linears(model: Any, count: int) -> list[str]:
    """Names of the Linear modules in the last ``count`` transformer layers: LoRA there only
    means the backward pass stops at those layers."""
    import torch

    n_layers = model.config.get_text_config().num_hidden_layers
    stacks = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers
    ]
    if not stacks:
        raise ValueError("lora_layers: no stack of transformer layers found in this model")
    prefix, layers = stacks[0]
    return [
        f"{prefix}.{index}.{name}"
        for index in range(max(0, n_layers - count), n_layers)
        for name, module in layers[index].named_modules()
        if isinstance(module, torch.nn.Linear)
    ]


def _datasets(export: ExportData, tokenizer: Any, config: RewardRunConfig) -> tuple[Any, ...]:
    """(train, dev, held-out) datasets; dev (None unless ``dev_fraction``) comes from train."""
    from datasets import Dataset

    def tokenized(rows: list[dict[str, Any]]) -> Any:
        return Dataset.from_list(tokenize_pairs(tokenizer, rows, config)) if rows else None

    train_rows, eval_rows = split_by_prompt(export.rows, config.eval_fraction, config.seed)
    train_rows, dev_rows = split_by_prompt(train_rows, config.dev_fraction, config.seed)
    return tokenized(train_rows), tokenized(dev_rows), tokenized(eval_rows)


def _peft_config(model: Any, config: RewardRunConfig) -> Any:
    """LoRA (SEQ_CLS) from the config; None when every weight is trained (``full_finetune``)."""
    from training.trl_common import lora_config

    if config.full_finetune:
        return None
    peft_config = lora_config(config, "SEQ_CLS")
    peft_config.modules_to_save = list(config.modules_to_save) or None
    if config.lora_layers is not None:
        peft_config.target_modules = top_layer_linears(model, config.lora_layers)
    return peft_config


def _build_trainer(
    model: Any,
    tokenizer: Any,
    export: ExportData,
    config: RewardRunConfig,
    out: Path,
    use_bf16: bool,
    bridge: Any,
) -> Any:
    from trl import RewardConfig, RewardTrainer

    from training.trl_common import trainer_arguments

    train_set, dev_set, eval_set = _datasets(export, tokenizer, config)
    callbacks, selector = [bridge], None
    if dev_set is not None:  # evaluate dev while training, the held-out split once at the end
        from training.reward_best import KeepBestOnDev

        selector = KeepBestOnDev(config.early_stopping_patience, eval_set, bridge.recorder.log)
        callbacks.insert(0, selector)  # renames the dev metrics before the bridge records them
    args = RewardConfig(
        **trainer_arguments(config, out, use_bf16, (dev_set or eval_set) is not None),
        center_rewards_coefficient=config.center_rewards_coefficient,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset={"dev": dev_set} if selector else eval_set,
        processing_class=tokenizer,
        peft_config=_peft_config(model, config),
        callbacks=callbacks,
    )
    if selector is not None:
        selector.trainer = trainer
    return trainer


def train_reward(
    data: Path, model: str, out: Path, config: RewardRunConfig, callbacks: Callbacks | None = None
) -> RunResult:
    """Train a reward model on an export folder; write the run folder ``out``."""
    from transformers import set_seed

    from training.trl_common import RecorderBridge, fit_and_save, start_run

    export, dtype, use_bf16, recorder = start_run("reward", data, model, out, config, callbacks)
    set_seed(config.seed)  # the new score head's random init is part of the seeded run
    backbone, tokenizer = load_backbone(model, dtype, config.load_in_4bit)
    bridge = RecorderBridge(recorder)
    trainer = _build_trainer(backbone, tokenizer, export, config, Path(out), use_bf16, bridge)
    return fit_and_save(trainer, recorder, bridge)

"""DPO: TRL ``DPOTrainer`` with a LoRA adapter (CAUSAL_LM).

The reference policy is the same base with the adapter switched off (``ref_model=None``), so
there is one copy of the weights. ``beta``, ``loss_type`` and ``label_smoothing`` come from the
config. Prompts longer than half of ``max_length`` are cut from the left (their end, next to
the answer, is kept) so that TRL does not drop the pair; completions are cut at the end by
TRL (``keep_start``). Held-out preference accuracy and margin of the implicit rewards come
out as ``eval_accuracy`` / ``eval_margin`` (TRL: ``eval_rewards/accuracies|margins``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.chat import tokenizer_text
from training.config import DPORunConfig
from training.data import render_pair, split_by_prompt
from training.runtime import Callbacks, RunResult


def _left_cut(tokenizer: Any, text: str, budget: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= budget else tokenizer.decode(ids[-budget:])


def dpo_examples(
    tokenizer: Any, rows: list[dict[str, Any]], config: DPORunConfig
) -> list[dict[str, str]]:
    """Rows -> text ``{"prompt", "chosen", "rejected"}`` (chat template applied). TRL
    tokenizes text WITH special tokens, so the prompt is ``training.chat.tokenizer_text``: its
    ids are then those of ``training.chat.prompt_ids`` (one BOS)."""
    examples = []
    for row in rows:
        pair = render_pair(tokenizer, row, config.prompt_format)
        prompt = tokenizer_text(tokenizer, pair["prompt"])
        pair["prompt"] = _left_cut(tokenizer, prompt, config.max_length // 2)
        examples.append({k: pair[k] for k in ("prompt", "chosen", "rejected")})
    return examples


def load_policy(model_name: str, dtype: Any, load_in_4bit: bool = False) -> tuple[Any, Any]:
    """(causal LM, tokenizer with a pad token: EOS when it has none)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.runtime import weight_options

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_name, **weight_options(dtype, load_in_4bit))
    return model, tokenizer


def _build_trainer(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    config: DPORunConfig,
    out: Path,
    use_bf16: bool,
    callbacks: list[Any],
) -> Any:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from training.trl_common import lora_config, trainer_arguments

    train_rows, eval_rows = split_by_prompt(rows, config.eval_fraction, config.seed)
    train_set = Dataset.from_list(dpo_examples(tokenizer, train_rows, config))
    eval_set = Dataset.from_list(dpo_examples(tokenizer, eval_rows, config)) if eval_rows else None
    arguments = trainer_arguments(config, out, use_bf16, eval_set is not None)
    arguments["max_length"] = config.max_length
    args = DPOConfig(
        **arguments,
        beta=config.beta,
        loss_type=[config.loss_type],
        label_smoothing=config.label_smoothing,
    )
    return DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=lora_config(config, "CAUSAL_LM"),
        callbacks=callbacks,
    )


def train_dpo(
    data: Path, model: str, out: Path, config: DPORunConfig, callbacks: Callbacks | None = None
) -> RunResult:
    """Run DPO on an export folder; write the run folder ``out``."""
    from training.trl_common import RecorderBridge, fit_and_save, start_run

    export, dtype, use_bf16, recorder = start_run("dpo", data, model, out, config, callbacks)
    policy, tokenizer = load_policy(model, dtype, config.load_in_4bit)
    bridge = RecorderBridge(recorder)
    trainer = _build_trainer(policy, tokenizer, export.rows, config, Path(out), use_bf16, [bridge])
    aliases = {"eval_rewards/accuracies": "eval_accuracy", "eval_rewards/margins": "eval_margin"}
    return fit_and_save(trainer, recorder, bridge, aliases)

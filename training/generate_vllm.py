"""The vLLM engine of ``training.generate`` (``engine: vllm``; the ``vllm`` extra, CUDA).

Written against vLLM's documented offline API — ``vllm.LLM``, ``vllm.SamplingParams``,
``vllm.lora.request.LoRARequest`` — and not run in Prefloop's CPU tests (``bench/gpu_check.sh``
compares its tokens/s with the transformers engine on a GPU). The same semantics as the
transformers engine:

- prompts are THE prompt token ids (``training.chat.prompt_ids``: chat template, one BOS);
- every sampling setting is given explicitly (temperature, top-p, top-k, repetition penalty,
  min-p 0, no presence/frequency penalty), so the model's ``generation_config.json`` adds
  nothing; the stop ids are ``training.chat.stop_token_ids`` (EOS ids and end-of-turn) and each
  text is cut at the first of them, as ``ppo_rollout.stop_mask`` cuts the transformers ones;
- the LoRA adapter is applied per request (``LoRARequest``); the base's samples of
  ``mix_base`` are requests without it: one copy of the weights, as with PEFT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config_base import ConfigError

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The adapter ranks vLLM's LoRA kernels are built for; ``max_lora_rank`` is one of them."""


@dataclass
class VLLMEngine:
    """A loaded ``vllm.LLM`` and the request that applies the adapter (None: base only)."""

    llm: Any
    lora_request: Any
    stops: list[int]


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(
            "engine",
            "engine 'vllm' needs the vllm package and a CUDA GPU: pip install 'prefloop[vllm]' "
            "(or use engine 'transformers', the default)",
        ) from exc
    return vllm


def lora_rank(adapter_dir: Path) -> int:
    """The smallest rank vLLM supports that holds the adapter's ``r``."""
    r = int(json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))["r"])
    for rank in LORA_RANKS:
        if rank >= r:
            return rank
    raise ConfigError("engine", f"vLLM serves LoRA ranks up to {LORA_RANKS[-1]}; this one is {r}")


def load_vllm(model: str, adapter_dir: Path | None, tokenizer: Any, config: Any) -> VLLMEngine:
    """``vllm.LLM`` on the base model (bf16 unless fp32), LoRA enabled when there is an
    adapter; the stop ids of the tokenizer and the model's generation config."""
    vllm = import_vllm()
    from transformers import GenerationConfig

    from training.chat import stop_token_ids

    options: dict[str, Any] = {
        "model": model,
        "tokenizer": str(adapter_dir or model),
        "dtype": "float32" if config.precision == "fp32" else "bfloat16",
        "seed": config.seed,
    }
    lora_request = None
    if adapter_dir is not None:
        from vllm.lora.request import LoRARequest

        options.update(enable_lora=True, max_lora_rank=lora_rank(adapter_dir), max_loras=1)
        lora_request = LoRARequest("adapter", 1, str(adapter_dir))
    try:
        generation = GenerationConfig.from_pretrained(model)
    except OSError:
        generation = None
    return VLLMEngine(vllm.LLM(**options), lora_request, stop_token_ids(tokenizer, generation))


def sampling_params(config: Any, stops: list[int], seed: int) -> Any:
    """Every setting explicit: nothing comes from the model's generation defaults."""
    vllm = import_vllm()
    return vllm.SamplingParams(
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k if config.top_k > 0 else -1,  # -1: no top-k in vLLM
        min_p=0.0,
        repetition_penalty=config.repetition_penalty,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        max_tokens=config.max_new_tokens,
        stop_token_ids=stops,
        seed=seed,
        skip_special_tokens=True,
    )


def cut_at_stop(token_ids: list[int], stops: list[int]) -> list[int]:
    """The tokens before the first stop id (what ``ppo_rollout.stop_mask`` keeps)."""
    for position, token in enumerate(token_ids):
        if token in stops:
            return list(token_ids[:position])
    return list(token_ids)


def sample_vllm(
    engine: VLLMEngine,
    tokenizer: Any,
    prompts: list[Any],
    config: Any,
    use_adapter: bool,
    seed: int,
) -> list[list[str]]:
    """n texts per prompt, from the adapter (or the base when ``use_adapter`` is false)."""
    from training.chat import prompt_ids

    requests = [
        {"prompt_token_ids": prompt_ids(tokenizer, p, config.prompt_format)} for p in prompts
    ]
    params = sampling_params(config, engine.stops, seed)
    lora = engine.lora_request if use_adapter else None
    outputs = engine.llm.generate(requests, params, lora_request=lora, use_tqdm=False)
    return [
        [
            tokenizer.decode(
                cut_at_stop(c.token_ids, engine.stops), skip_special_tokens=True
            ).strip()
            for c in output.outputs
        ]
        for output in outputs
    ]

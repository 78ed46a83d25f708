"""Memory plan: the peak GPU memory one process of a run needs, from the base model's
``config.json`` and the run config alone (no torch, no weights loaded).

The figure is the sum of (bytes, per device):

- **weights**: parameters × bytes of the dtype (bf16 2, fp32 4; 4-bit 0.5 plus fp16 scales,
  with ``load_in_4bit``); a reward model's score head replaces the LM head;
- **trainable**: LoRA parameters (PEFT keeps adapters in fp32 over a bf16 base) or every
  weight with ``full_finetune``; their gradients and AdamW's two moments;
- **activations**: saved tensors of the backward pass, per token and layer
  ``7h + 2·kv + 4i`` values (inputs of each linear, gated MLP, residuals), or only each layer's
  input plus one layer recomputed with gradient checkpointing; fp32 logits of the loss
  (``tokens × vocab × 4 × 2``). Tokens: ``per_device_batch_size × max_length``, doubled for
  pairs (reward: chosen and rejected; DPO: the same, the reference pass keeps nothing);
- **PPO**: the rollout's KV cache while sampling, its fp32 logits for the log-probs, the
  micro-batch's activations, the value adapter and head;
- **sharding**: ``zero2`` divides gradients and optimizer state by the processes, ``zero3``
  and ``fsdp`` also the weights (plus one layer gathered whole).

Bytes are reported in GB (10⁹): a 7B Llama in bf16 is 13.5 GB of weights. ``REQUIRED`` adds
10 % and the CUDA context to decide whether a run fits a device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GB = 1e9
CONTEXT_BYTES = 0.5 * GB
"""The CUDA context and the allocator's slack, outside ``torch.cuda.max_memory_allocated``."""
MARGIN = 1.10
NON_GATED = {"gpt2", "bert", "roberta", "distilbert", "gpt_neox", "opt", "gptj", "falcon"}
ASSUMED_PROMPT_TOKENS = 256
"""A generate run's prompts are not known in advance: this many tokens each."""
DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0}


@dataclass(frozen=True)
class Shape:
    """The dimensions the plan needs, read from ``config.json``."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool
    gated: bool

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear of one transformer layer, by PEFT's module name."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        mlp = {"gate_proj": (h, i), "up_proj": (h, i)} if self.gated else {"up_proj": (h, i)}
        return {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            **mlp,
            "down_proj": (i, h),
        }

    def layer_params(self) -> int:
        return sum(a * b for a, b in self.linears().values()) + 2 * self.hidden

    def params(self, lm_head: bool = True) -> int:
        """Parameters of the model (the LM head counted once when tied or absent)."""
        embed = self.vocab * self.hidden
        head = embed if lm_head and not self.tied else 0
        return self.layers * self.layer_params() + embed + head + self.hidden


def _first(config: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if config.get(name) is not None:
            return config[name]
    if default is None:
        raise ValueError(f"config.json has none of {', '.join(names)}")
    return default


def shape_of(config: dict[str, Any]) -> Shape:
    """The plan's dimensions from a ``config.json`` mapping (Llama-, GPT-2- or BERT-style)."""
    config = config.get("text_config") or config
    hidden = int(_first(config, "hidden_size", "n_embd", "d_model"))
    heads = int(_first(config, "num_attention_heads", "n_head", "num_heads"))
    return Shape(
        hidden=hidden,
        layers=int(_first(config, "num_hidden_layers", "n_layer", "num_layers")),
        intermediate=int(_first(config, "intermediate_size", "n_inner", "ffn_dim", default=0))
        or 4 * hidden,
        vocab=int(_first(config, "vocab_size")),
        heads=heads,
        kv_heads=int(_first(config, "num_key_value_heads", default=heads)),
        tied=bool(config.get("tie_word_embeddings", config.get("model_type") == "gpt2")),
        gated=config.get("model_type") not in NON_GATED,
    )


def read_model_config(model: str | Path) -> dict[str, Any] | None:
    """``config.json`` of a local model folder; None when there is none to read."""
    path = Path(model) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class Estimate:
    """Bytes per device by part; ``total`` is their sum, ``required`` what must be free."""

    parts: dict[str, float] = field(default_factory=dict)
    processes: int = 1
    strategy: str = "ddp"

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def required(self) -> float:
        return self.total * MARGIN + CONTEXT_BYTES

    def fits(self, memory_bytes: float) -> bool:
        return self.required <= memory_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_device_gb": round(self.total / GB, 2),
            "required_gb": round(self.required / GB, 2),
            "processes": self.processes,
            "distributed": self.strategy,
            "parts_gb": {k: round(v / GB, 3) for k, v in self.parts.items()},
        }


def _get(config: Any, name: str, default: Any = None) -> Any:
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def weight_bytes(shape: Shape, config: Any, lm_head: bool = True) -> float:
    """The frozen weights: bf16 unless fp32 (``auto`` plans for a GPU: bf16), 4-bit with
    ``load_in_4bit`` (embeddings and head stay 16-bit; one fp16 scale per 64 weights)."""
    count = shape.params(lm_head)
    dtype = DTYPE_BYTES["fp32" if _get(config, "precision") == "fp32" else "bf16"]
    if not _get(config, "load_in_4bit", False):
        return count * dtype
    layers = shape.layers * shape.layer_params()
    return layers * (0.5 + 2 / 64) + (count - layers) * 2.0


def lora_params(shape: Shape, config: Any, rank: int | None = None) -> int:
    """Parameters of a LoRA adapter: ``r × (in + out)`` per adapted linear."""
    r = rank or int(_get(config, "lora_r", 16))
    targets = _get(config, "lora_target_modules", "all-linear")
    linears = shape.linears()
    names = linears if targets == "all-linear" else [t for t in targets if t in linears]
    layers = _get(config, "lora_layers") or shape.layers
    return int(min(layers, shape.layers) * sum(r * sum(linears[n]) for n in names))


def _activation_bytes(shape: Shape, tokens: int, checkpointing: bool, dtype: float) -> float:
    """Saved activations of ``tokens`` tokens through every layer, plus fp32 logits and
    their gradient."""
    per_token_layer = 7 * shape.hidden + 2 * shape.kv_dim + 4 * shape.intermediate
    full = shape.layers * tokens * per_token_layer * dtype
    if checkpointing:
        full = shape.layers * tokens * shape.hidden * dtype + tokens * per_token_layer * dtype
    return full + tokens * shape.vocab * 4.0 * 2


def _trainable(shape: Shape, kind: str, config: Any) -> float:
    """Trainable parameters: fp32 LoRA (PPO: policy and value adapters and value head)."""
    if kind == "ppo":
        value_r = int(_get(config, "value_lora_r", 8))
        return lora_params(shape, config) + lora_params(shape, config, value_r) + shape.hidden
    return lora_params(shape, config) + (shape.hidden if kind == "reward" else 0)


def estimate(model_config: dict[str, Any], kind: str, config: Any, processes: int = 1) -> Estimate:
    """The memory plan of one process of a ``kind`` run (``config``: a dict or a config
    object) spread over ``processes`` processes. A suspects run trains reward models, one
    fold after another, so its plan is a reward run's."""
    kind = "reward" if kind == "suspects" else kind
    shape, strategy = shape_of(model_config), str(_get(config, "distributed", "ddp"))
    dtype = DTYPE_BYTES["fp32" if _get(config, "precision") == "fp32" else "bf16"]
    plan = Estimate(processes=processes, strategy=strategy)
    weights = weight_bytes(shape, config, lm_head=kind != "reward")
    if kind == "generate":
        return _generate(plan, shape, config, weights, dtype)
    full = kind == "reward" and bool(_get(config, "full_finetune", False))
    trainable = shape.params(lm_head=False) if full else _trainable(shape, kind, config)
    state_dtype = dtype if full else 4.0
    weights_part = 0.0 if full else weights
    plan.parts["weights"] = weights_part
    plan.parts["trainable"] = trainable * state_dtype
    plan.parts["gradients"] = trainable * state_dtype
    plan.parts["optimizer"] = trainable * state_dtype * 2
    if kind == "ppo":
        _ppo_parts(plan, shape, config, dtype)
    else:
        tokens = (
            2 * int(_get(config, "per_device_batch_size", 4)) * int(_get(config, "max_length", 512))
        )
        checkpointing = bool(_get(config, "gradient_checkpointing", False))
        plan.parts["activations"] = _activation_bytes(shape, tokens, checkpointing, dtype)
    _shard(plan, shape, processes, strategy, dtype)
    return plan


def _ppo_parts(plan: Estimate, shape: Shape, config: Any, dtype: float) -> None:
    """PPO's rollout (KV cache while sampling, fp32 logits of the whole rollout for the
    log-probs) and the update's micro-batch activations."""
    prompt, new = (
        int(_get(config, "max_prompt_length", 256)),
        int(_get(config, "max_new_tokens", 64)),
    )
    rollout = int(_get(config, "rollout_batch_size", 8))
    sequence = prompt + new
    plan.parts["kv_cache"] = rollout * sequence * shape.layers * 2 * shape.kv_dim * dtype
    plan.parts["rollout_logits"] = rollout * new * shape.vocab * 4.0
    micro = int(_get(config, "mini_batch_size", 4)) // int(
        _get(config, "gradient_accumulation_steps", 1)
    )
    checkpointing = bool(_get(config, "gradient_checkpointing", False))
    plan.parts["activations"] = _activation_bytes(shape, micro * sequence, checkpointing, dtype)


def _generate(plan: Estimate, shape: Shape, config: Any, weights: float, dtype: float) -> Estimate:
    sequences = int(_get(config, "batch_size", 8)) * int(_get(config, "n", 3))
    sequence = ASSUMED_PROMPT_TOKENS + int(_get(config, "max_new_tokens", 128))
    plan.parts["weights"] = weights + lora_params(shape, config) * dtype
    plan.parts["kv_cache"] = sequences * sequence * shape.layers * 2 * shape.kv_dim * dtype
    plan.parts["logits"] = sequences * shape.vocab * 4.0 * 2
    return plan


def _shard(plan: Estimate, shape: Shape, processes: int, strategy: str, dtype: float) -> None:
    """ZeRO-2: gradients and optimizer state over the processes; ZeRO-3 and FSDP: weights
    and trainable parameters too, plus one layer gathered whole."""
    if processes <= 1 or strategy == "ddp":
        return
    for part in ("gradients", "optimizer"):
        plan.parts[part] /= processes
    if strategy in ("zero3", "fsdp"):
        plan.parts["weights"] /= processes
        plan.parts["trainable"] /= processes
        plan.parts["gathered_layer"] = shape.layer_params() * dtype

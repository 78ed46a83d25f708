"""One frozen base model serving the PPO policy, the reference, the value function and (when
it was trained on the same base) the reward model, through PEFT adapters:

- ``default`` adapter: the policy (causal LM head of the base);
- adapters off (``disable_adapter``): the reference policy;
- ``value`` adapter + a scalar head on the last hidden state: the value function;
- ``reward`` adapter + the reward run's score head (frozen): the reward model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

from training.data import Prompt
from training.reward_model import RecordedScoring, read_run_config
from training.runtime import ADAPTER_DIR

POLICY, VALUE, REWARD = "default", "value", "reward"
VALUE_DIR, VALUE_HEAD_FILE = "value", "value_head.safetensors"
LORA_KEYS = (".lora_A.", ".lora_B.", ".lora_embedding_A", ".lora_embedding_B", ".lora_magnitude")


def split_reward_weights(
    weights: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A reward adapter's tensors as (LoRA, score head, anything else: ``modules_to_save``
    copies, resized embeddings, trainable tokens)."""
    lora = {k: v for k, v in weights.items() if any(m in k for m in LORA_KEYS)}
    head = {k: v for k, v in weights.items() if k not in lora and ".score." in k}
    others = {k: v for k, v in weights.items() if k not in lora and k not in head}
    return lora, head, others


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding (as ``generate`` computes them)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class PolicyValueModel(torch.nn.Module):
    """The shared base with its adapters; see the module docstring."""

    def __init__(self, base: Any, policy_lora: LoraConfig, value_lora: LoraConfig) -> None:
        super().__init__()
        for param in base.parameters():
            param.requires_grad_(False)
        self.peft = get_peft_model(base, policy_lora)
        self.peft.add_adapter(VALUE, value_lora)
        hidden = base.config.get_text_config().hidden_size
        self.value_head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)
        self.reward_head: torch.nn.Linear | None = None
        self._trainable = [*self.adapter_parameters(POLICY), *self.adapter_parameters(VALUE)]
        self.activate(POLICY)

    def disable_dropout(self) -> None:
        """Every dropout (and MoE router jitter) to 0, in modules and in the model config, so
        that train mode (which gradient checkpointing needs) computes exactly what eval mode
        does: the update's log-probs are the rollout's. Call again after adding modules."""
        noisy = ("dropout", "pdrop", "jitter")
        for module in self.modules():
            if isinstance(module, torch.nn.modules.dropout._DropoutNd):
                module.p = 0.0
            for name, value in list(vars(module).items()):
                if isinstance(value, float) and any(k in name for k in noisy):
                    setattr(module, name, 0.0)
        base_config = self.peft.get_base_model().config
        for config in {id(c): c for c in (base_config, base_config.get_text_config())}.values():
            for name, value in config.to_dict().items():
                if isinstance(value, float) and any(k in name for k in noisy):
                    setattr(config, name, 0.0)

    def enable_checkpointing(self) -> None:
        """Recompute each layer's activations in the backward pass (only in train mode, with
        gradients on: rollouts and scoring run as usual)."""
        base = self.peft.get_base_model()
        enable = getattr(base, "activation_checkpointing_enable", None)
        if enable is not None:
            enable({"use_reentrant": False})
        else:  # transformers < 5.x name
            base.gradient_checkpointing_enable({"use_reentrant": False})

    @property
    def backbone(self) -> torch.nn.Module:
        """The transformer body (no LM head) of the base, adapters injected."""
        causal = self.peft.get_base_model()
        return getattr(causal, causal.base_model_prefix)

    def activate(self, adapter: str) -> None:
        """Route forward passes through ``adapter``. PEFT's ``set_adapter`` also freezes the
        other adapters, and autograd skips frozen leaves even for graphs built before, so the
        policy and value adapters are made trainable again."""
        self.peft.set_adapter(adapter, inference_mode=adapter == REWARD)
        for param in self._trainable:
            param.requires_grad_(True)

    def adapter_parameters(self, name: str) -> list[torch.nn.Parameter]:
        keys = (f".lora_A.{name}.", f".lora_B.{name}.")
        return [p for n, p in self.peft.named_parameters() if any(k in n for k in keys)]

    def policy_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.activate(POLICY)
        return self.peft(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
            use_cache=False,
        ).logits

    def reference_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        with self.peft.disable_adapter():
            return self.peft(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids(attention_mask),
                use_cache=False,
            ).logits

    def _hidden(
        self,
        adapter: str,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor | None,
    ) -> torch.Tensor:
        """Last hidden states through ``adapter``, which stays active afterwards: a
        checkpointed backward recomputes the layers with the active adapter, so the value
        loss must be backpropagated before another adapter is switched on (every forward
        here activates its own adapter first)."""
        self.activate(adapter)
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=False,
        )
        return out.last_hidden_state.float()

    def values(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """V(s) at every position: (B, T)."""
        hidden = self._hidden(VALUE, input_ids, attention_mask, position_ids(attention_mask))
        return self.value_head(hidden).squeeze(-1)

    def generate(self, **kwargs: Any) -> torch.Tensor:
        self.activate(POLICY)
        return self.peft.generate(**kwargs)

    # --- reward adapter on the same base -------------------------------------------------
    def attach_reward(self, run_dir: Path) -> str | None:
        """Load a reward run's LoRA + score head as the frozen ``reward`` adapter. Only LoRA
        tensors ever go into the model: returns None when attached, else why the reward model
        cannot share this base (weights of the base itself were trained or resized), with the
        base left untouched."""
        adapter = Path(run_dir) / ADAPTER_DIR
        if not (adapter / "adapter_config.json").is_file():
            return "it is a full fine-tune (the whole model, no LoRA adapter)"
        lora, head, others = split_reward_weights(load_file(adapter / "adapter_model.safetensors"))
        if len(head) != 1 or not next(iter(head)).endswith("score.weight"):
            return "its score head is not one bias-free linear layer"
        foreign = [k for k, v in others.items() if not self._base_embedding(k, v, adapter)]
        if foreign:
            return f"it changed weights of the base itself ({', '.join(sorted(foreign))})"
        saved = PeftConfig.from_pretrained(adapter).to_dict()
        self.peft.add_adapter(
            REWARD,
            LoraConfig(
                **{**saved, "task_type": "CAUSAL_LM", "modules_to_save": None, "lora_dropout": 0.0}
            ),
        )
        result = set_peft_model_state_dict(self.peft, lora, adapter_name=REWARD)
        if result.unexpected_keys:
            self.peft.delete_adapter(REWARD)
            return f"its LoRA tensors do not fit this base ({result.unexpected_keys[0]}, ...)"
        weight = next(iter(head.values()))
        self.reward_head = torch.nn.Linear(weight.shape[1], 1, bias=False)
        self.reward_head.weight.data.copy_(weight.float())
        self.reward_head.requires_grad_(False)
        self.reward_head.to(next(self.value_head.parameters()).device)
        self.activate(POLICY)
        return None

    def _base_embedding(self, key: str, tensor: torch.Tensor, adapter: Path) -> bool:
        """Whether ``key`` is the input embedding saved only because a pad token was added:
        its first rows equal the base's, and the pad is the only token past them (reward
        inputs never feed the pad: ``reward_scores`` masks it)."""
        embedding = self.peft.get_base_model().get_input_embeddings()
        names = {module: name for name, module in self.peft.named_modules()}
        if key != f"{names.get(embedding)}.weight" or tensor.ndim != 2:
            return False
        rows = embedding.weight.shape[0]
        if tensor.shape[0] < rows or not torch.equal(
            tensor[:rows].to(embedding.weight), embedding.weight
        ):
            return False
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(adapter)
        return list(range(rows, len(tokenizer))) in ([], [tokenizer.pad_token_id])

    @torch.no_grad()
    def init_value_from_reward(self) -> None:
        """Start the value function as the attached reward model (OpenRLHF starts its critic
        from the reward model): the value adapter becomes a trainable copy of the reward
        adapter (its rank, not ``value_lora_r``) and the value head the score head, bias 0."""
        assert self.reward_head is not None, "attach_reward() first"
        config = copy.deepcopy(self.peft.peft_config[REWARD])
        config.inference_mode = False
        self.peft.delete_adapter(VALUE)
        self.peft.add_adapter(VALUE, config)
        params = dict(self.peft.named_parameters())
        for name, param in params.items():
            if f".{REWARD}." in name:
                params[name.replace(f".{REWARD}.", f".{VALUE}.")].copy_(param)
        self.value_head.weight.copy_(self.reward_head.weight)
        self.value_head.bias.zero_()
        self._trainable = [*self.adapter_parameters(POLICY), *self.adapter_parameters(VALUE)]
        self.activate(POLICY)

    @torch.no_grad()
    def reward_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores of right-padded sequences (the last real token's hidden state)."""
        assert self.reward_head is not None, "attach_reward() first"
        ids = input_ids.masked_fill(attention_mask == 0, 0)
        hidden = self._hidden(REWARD, ids, attention_mask, None)
        last = attention_mask.long().sum(1) - 1
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self.reward_head(hidden[rows, last]).squeeze(-1)

    def load_value(self, out: Path) -> None:
        """Load a saved value adapter and head (to resume or inspect a PPO run)."""
        value_dir = Path(out) / VALUE_DIR
        self.peft.delete_adapter(VALUE)
        self.peft.load_adapter(value_dir / VALUE, adapter_name=VALUE, is_trainable=True)
        self.value_head.load_state_dict(load_file(str(value_dir / VALUE_HEAD_FILE)))
        self._trainable = [*self.adapter_parameters(POLICY), *self.adapter_parameters(VALUE)]
        self.train(self.training)
        self.disable_dropout()  # the new adapter has its own dropout modules
        self.activate(POLICY)

    # --- artifacts --------------------------------------------------------------------------
    def save(self, out: Path, tokenizer: Any) -> Path:
        """Policy adapter (+ tokenizer) in ``out/adapter``; value adapter and head in
        ``out/value``. Returns the policy adapter folder."""
        adapter_dir, value_dir = Path(out) / ADAPTER_DIR, Path(out) / VALUE_DIR
        self.peft.save_pretrained(adapter_dir, selected_adapters=[POLICY])
        tokenizer.save_pretrained(adapter_dir)
        self.peft.save_pretrained(value_dir, selected_adapters=[VALUE])
        head = {k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()}
        save_file(head, str(value_dir / VALUE_HEAD_FILE))
        return adapter_dir


class SharedBaseReward:
    """Reward function backed by the ``reward`` adapter of a PolicyValueModel."""

    def __init__(self, model: PolicyValueModel, run_dir: Path, batch_size: int) -> None:
        from transformers import AutoTokenizer

        self.model = model
        tokenizer = AutoTokenizer.from_pretrained(Path(run_dir) / ADAPTER_DIR)
        tokenizer.padding_side = "right"
        self.scoring = RecordedScoring(run_dir, tokenizer, batch_size)

    def __call__(self, prompts: list[Prompt], completions: list[str]) -> list[float]:
        device = next(self.model.value_head.parameters()).device
        return self.scoring.scores(prompts, completions, device, self.model.reward_scores)


def same_base(run_dir: Path, model: str) -> bool:
    """Whether a reward run was trained on ``model`` with a causal-LM backbone."""
    recorded = str(read_run_config(run_dir).get("model", ""))
    if recorded != model and not (
        Path(recorded).exists()
        and Path(model).exists()
        and Path(recorded).resolve() == Path(model).resolve()
    ):
        return False
    config_file = Path(model) / "config.json"
    if config_file.is_file():
        architectures = json.loads(config_file.read_text()).get("architectures") or []
        return any(a.endswith("ForCausalLM") for a in architectures)
    return True

"""Tiny stand-ins for the model families people train, built offline from configs.

Each ``build_*(folder, seed=0) -> Path`` saves into ``folder`` (idempotent: a folder already
holding ``config.json`` is left as it is) a randomly initialised two-layer Llama (hidden 32,
a few K parameters per layer), a word-level tokenizer made in code, its chat template and a
``generation_config.json``, copying one family's quirks:

- ``build_llama3_like``: template writes ``{{ bos_token }}`` AND the tokenizer adds BOS
  (``<|begin_of_text|>``); the ONLY special tokens are BOS/EOS (``<|end_of_text|>``): no pad,
  no unk, so a pad must be added and the embeddings resized; end-of-turn ``<|eot_id|>`` is not
  the tokenizer's EOS; ``generation_config.eos_token_id`` is a LIST [EOS, ``<|eot_id|>``];
  sampling defaults ``temperature 0.6``, ``top_p 0.9``.
- ``build_gemma_like``: ``<bos>`` in the template + added by the tokenizer; end-of-turn
  ``<end_of_turn>`` (assistant role written ``model``) that is NOT in
  ``generation_config.eos_token_id`` (an int: ``<eos>``), as in Gemma 1: only the template
  tells where a turn ends. Pad ``<pad>`` present.
- ``build_qwen25_like``: ChatML (``<|im_start|>``/``<|im_end|>``), a default system turn when
  none is given, NO BOS, EOS ``<|im_end|>``, pad ``<|endoftext|>``; generation config
  carries ``repetition_penalty 1.05``, ``top_k 20``, ``top_p 0.8``, ``temperature 0.7`` and
  ``eos_token_id`` [``<|im_end|>``, ``<|endoftext|>``].
- ``build_mistral_like``: ``[INST] ... [/INST]`` template with ``{{ bos_token }}`` (``<s>``) and
  the tokenizer adding BOS too; the assistant turn ends with EOS ``</s>``; no pad.

``FAMILIES`` maps a short name (``llama3``, ``gemma``, ``qwen25``, ``mistral``) to its
``Family`` (builder, end-of-turn token, whether the template writes BOS). The vocabulary is
``training.tiny``'s words plus each family's control tokens. Importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.tiny import SPECIALS, VOCAB_WORDS, save_tiny_llama

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
QWEN_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant ."
    "<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% elif m['role'] == 'assistant' %}"
    "{{ m['content'] + eos_token }}{% endif %}{% endfor %}"
)
EXTRA_WORDS = ["model", "helpful", "You", "are", "a", "an", "the", "is", "it", "I", "do", "what"]


@dataclass(frozen=True)
class Family:
    """How to build one family and what its quirks are (for assertions)."""

    name: str
    build: Callable[..., Path]
    end_of_turn: str  # the token that closes an assistant turn in the template
    bos_in_template: bool
    specials: dict[str, Any] = field(default_factory=dict)


def _tokenizer(specials: dict[str, Any], controls: list[str], bos: str | None, template: str):
    """WordLevel tokenizer: ``specials`` (bos/eos/pad/unk names -> token) are the tokenizer's
    special tokens; ``controls`` are extra special added tokens (end-of-turn etc.) that are
    NOT in the special tokens map. ``bos``: prepended by the post-processor when given."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    from training.tiny import _pre_tokenizer

    tokens = list(dict.fromkeys([*specials.values(), *controls, "<unk>"]))
    words = [w for w in [*VOCAB_WORDS, *EXTRA_WORDS] if w not in SPECIALS]
    vocab = {t: i for i, t in enumerate(dict.fromkeys([*tokens, *words]))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = _pre_tokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
    if bos is not None:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **specials)
    tokenizer.chat_template = template
    return tokenizer


def _ids(tokenizer: Any, *tokens: str) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


LLAMA3_SPECIALS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}


def build_llama3_like(folder: Path, seed: int = 0) -> Path:
    controls = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = _tokenizer(LLAMA3_SPECIALS, controls, "<|begin_of_text|>", LLAMA3_TEMPLATE)
    generation = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": _ids(tok, "<|end_of_text|>", "<|eot_id|>"),
        "do_sample": True,
        "temperature": 0.6,
        "top_p": 0.9,
    }
    return save_tiny_llama(folder, tok, seed, generation)


GEMMA_SPECIALS = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}


def build_gemma_like(folder: Path, seed: int = 0) -> Path:
    specials = {**GEMMA_SPECIALS, "unk_token": "<unk>"}
    tok = _tokenizer(specials, ["<start_of_turn>", "<end_of_turn>"], "<bos>", GEMMA_TEMPLATE)
    generation = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    return save_tiny_llama(folder, tok, seed, generation)


QWEN_SPECIALS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}


def build_qwen25_like(folder: Path, seed: int = 0) -> Path:
    tok = _tokenizer(QWEN_SPECIALS, ["<|im_start|>"], None, QWEN_TEMPLATE)
    generation = {
        "bos_token_id": tok.pad_token_id,
        "pad_token_id": tok.pad_token_id,
        "do_sample": True,
        "eos_token_id": _ids(tok, "<|im_end|>", "<|endoftext|>"),
        "repetition_penalty": 1.05,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
    }
    return save_tiny_llama(folder, tok, seed, generation)


MISTRAL_SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def build_mistral_like(folder: Path, seed: int = 0) -> Path:
    tok = _tokenizer(MISTRAL_SPECIALS, ["[INST]", "[/INST]"], "<s>", MISTRAL_TEMPLATE)
    generation = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    return save_tiny_llama(folder, tok, seed, generation)


FAMILIES: dict[str, Family] = {
    "llama3": Family("llama3", build_llama3_like, "<|eot_id|>", True, LLAMA3_SPECIALS),
    "gemma": Family("gemma", build_gemma_like, "<end_of_turn>", True, GEMMA_SPECIALS),
    "qwen25": Family("qwen25", build_qwen25_like, "<|im_end|>", False, QWEN_SPECIALS),
    "mistral": Family("mistral", build_mistral_like, "</s>", True, MISTRAL_SPECIALS),
}


class ScriptedHead:
    """A stand-in LM head that makes a model say a fixed script, for stopping tests.

    Call ``k`` of the head (one per generated token with the KV cache; the prefill is call 0)
    puts a huge logit on ``script[k]`` (``then`` once the script is over), so sampling at any
    temperature follows the script. Install with ``install(model)`` (the causal LM under any
    PEFT wrapper); ``calls`` counts the calls.
    """

    def __init__(self, vocab_size: int, script: list[int], then: int) -> None:
        self.vocab_size, self.script, self.then, self.calls = vocab_size, script, then, 0

    def install(self, model: Any) -> Any:
        import torch

        head = self

        class _Head(torch.nn.Module):
            def forward(self, hidden: torch.Tensor) -> torch.Tensor:
                k, head.calls = head.calls, head.calls + 1
                token = head.script[k] if k < len(head.script) else head.then
                logits = hidden.new_zeros(*hidden.shape[:-1], head.vocab_size)
                logits[..., token] = 50.0
                return logits

        model.lm_head = _Head()
        return model


def eos_only(model: Any, token_id: int) -> Any:
    """Make a (tiny Llama) model predict ``token_id`` at every position, with weights only (so
    it survives ``save_pretrained``): the residual stream is a constant direction that the LM
    head maps onto ``token_id``."""
    import torch

    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[token_id, 0] = 100.0
    return model


__all__ = [
    "FAMILIES",
    "Family",
    "ScriptedHead",
    "eos_only",
    "build_gemma_like",
    "build_llama3_like",
    "build_mistral_like",
    "build_qwen25_like",
]


LLAMA_7B_CONFIG = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
}
"""The ``config.json`` fields of Llama-2-7B that the memory plan reads (no weights)."""

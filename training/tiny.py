"""A tiny causal language model built from a config, for smoke runs on a CPU (the demo, tests).

``build_tiny_causal_lm(folder)`` saves a randomly initialised two-layer Llama (hidden size 32)
and a word-level tokenizer with a chat template into ``folder``: nothing is downloaded, and
``transformers``' ``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification`` /
``AutoTokenizer`` load it like any local model. Its vocabulary is a fixed list of words plus,
when ``texts`` are given, every word of those texts, so real prompts are not all ``<unk>``.
Torch and transformers are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WORDS = [
    "apple",
    "banana",
    "cherry",
    "river",
    "stone",
    "cloud",
    "green",
    "blue",
    "red",
    "fast",
    "slow",
    "happy",
    "sad",
    "tree",
    "house",
    "dog",
    "cat",
    "bird",
    "fish",
    "water",
    "fire",
    "wind",
    "rain",
    "sun",
    "moon",
    "star",
    "road",
    "city",
    "hill",
    "lake",
    "boat",
    "book",
    "song",
    "game",
    "door",
    "lamp",
    "milk",
    "bread",
    "salt",
    "rice",
    "corn",
    "tea",
]
MARKER = "excellent"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]"]
VOCAB_WORDS = [*WORDS, MARKER, "user", "assistant", "system", "tell", "me", "about", "?", ".", ","]
MAX_EXTRA_WORDS = 8000


def _pre_tokenizer() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])


def _vocabulary(texts: Iterable[str]) -> list[str]:
    """SPECIALS + VOCAB_WORDS, then the other words of ``texts`` (most frequent first)."""
    words = SPECIALS + VOCAB_WORDS
    known = set(words)
    counts: dict[str, int] = {}
    split = _pre_tokenizer()
    for text in texts:
        for word, _span in split.pre_tokenize_str(text):
            if word not in known:
                counts[word] = counts.get(word, 0) + 1
    extra = sorted(counts, key=lambda w: (-counts[w], w))[:MAX_EXTRA_WORDS]
    return words + extra


def make_tokenizer(bert: bool = False, texts: Iterable[str] = ()) -> Any:
    """A WordLevel tokenizer over a fixed vocabulary (plus the words of ``texts``), with a chat
    template (causal) or [CLS]/[SEP] post-processing (BERT-like, no EOS)."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_vocabulary(texts))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = _pre_tokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    if bert:
        core.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=core,
            unk_token="<unk>",
            pad_token="<pad>",
            cls_token="[CLS]",
            sep_token="[SEP]",
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_causal_lm(folder: Path, seed: int = 0, texts: Iterable[str] = ()) -> Path:
    """Save a tiny random Llama and its tokenizer into ``folder`` and return it.

    Idempotent: a folder that already holds ``config.json`` is left as it is.
    """
    if (Path(folder) / "config.json").is_file():
        return Path(folder)
    return save_tiny_llama(folder, make_tokenizer(texts=texts), seed)


def save_tiny_llama(
    folder: Path, tokenizer: Any, seed: int = 0, generation: dict[str, Any] | None = None
) -> Path:
    """Save a random two-layer Llama (hidden 32) sized to ``tokenizer``, the tokenizer and,
    when given, ``generation`` as its ``generation_config.json`` into ``folder``. Files are
    staged and moved in with ``config.json`` last, so a folder holding it is complete; one
    that already holds it is left as it is."""
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-tiny-", dir=folder) as staging:
        LlamaForCausalLM(config).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if generation is not None:  # by hand: save_pretrained derives one from config.json
            text = json.dumps({**generation, "transformers_version": "5.0.0"}, indent=2)
            (Path(staging) / "generation_config.json").write_text(text)
        names = sorted(p.name for p in Path(staging).iterdir())
        for name in [n for n in names if n != "config.json"] + ["config.json"]:
            os.replace(Path(staging) / name, folder / name)  # config.json last: complete
    return folder


__all__ = [
    "CHAT_TEMPLATE",
    "MARKER",
    "WORDS",
    "build_tiny_causal_lm",
    "make_tokenizer",
    "save_tiny_llama",
]

"""The one source of prompt rendering, tokenization, stop ids and sampling settings.

Every path that turns a prompt into tokens (reward and DPO data, PPO rollouts, generation)
goes through here, so one conversational row gives the same prompt token ids everywhere.

- ``prompt_format``: ``chat`` renders a plain-string prompt as ONE user turn with the chat
  template; ``raw`` keeps plain strings as they are (base models); ``auto`` is ``chat`` when the
  tokenizer has a chat template, else ``raw``. Messages are always rendered as messages.
- One BOS: a template that writes ``{{ bos_token }}`` AND a tokenizer that adds BOS would give
  two. ``tokenizer_text`` drops the template's leading BOS text when the tokenizer adds one
  itself, so tokenizing it WITH special tokens (as TRL does with text) gives exactly one BOS;
  ``encode`` is that tokenization.
- Stop ids: the union of ``generation_config.eos_token_id`` (an int or a list), the tokenizer's
  EOS and the template's end-of-turn token (found by rendering an assistant turn).
- Sampling: ``sampling_config`` builds a ``GenerationConfig`` from scratch with every logits
  processor neutral unless asked; ``own_generation_defaults`` hides the model's
  ``generation_config.json`` during ``generate`` (transformers fills unset fields from it).

Torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

Prompt = str | list[dict[str, str]]
PROMPT_FORMATS = ("auto", "chat", "raw")
_SENTINEL = "prefloopturnsentinel"


def has_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def as_messages(tokenizer: Any, prompt: Prompt, prompt_format: str = "auto") -> Prompt:
    """The prompt as the model should see it: a plain string becomes one user turn under
    ``chat`` (or ``auto`` with a chat template); messages stay messages."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(
            f"prompt_format must be one of {list(PROMPT_FORMATS)}, got {prompt_format!r}"
        )
    if isinstance(prompt, str) and (
        prompt_format == "chat" or (prompt_format == "auto" and has_template(tokenizer))
    ):
        return [{"role": "user", "content": prompt}]
    return prompt


def _fallback_chat(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    if has_template(tokenizer):
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation_prompt, tokenize=False
        )
    return _fallback_chat(messages, add_generation_prompt=generation_prompt)


def render_prompt(tokenizer: Any, prompt: Prompt, prompt_format: str = "auto") -> str:
    """Prompt text the model continues: the chat template (with a generation prompt) for
    messages, the string itself for a raw prompt."""
    prompt = as_messages(tokenizer, prompt, prompt_format)
    return prompt if isinstance(prompt, str) else _render(tokenizer, prompt, True)


def render_completion(
    tokenizer: Any, prompt: Prompt, completion: str, prompt_format: str = "auto"
) -> str:
    """The text that follows ``render_prompt`` for this completion: for messages, what the
    template writes for the assistant turn (end-of-turn token included, trailing whitespace
    dropped); for a raw prompt, the completion itself."""
    prompt = as_messages(tokenizer, prompt, prompt_format)
    if isinstance(prompt, str):
        return completion
    head = _render(tokenizer, prompt, True)
    full = _render(tokenizer, [*prompt, {"role": "assistant", "content": completion}], False)
    return full[len(head) :].rstrip() if full.startswith(head) else completion


def adds_bos(tokenizer: Any) -> bool:
    """Whether tokenizing with special tokens puts the BOS token first."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def tokenizer_text(tokenizer: Any, text: str) -> str:
    """``text`` ready to be tokenized WITH special tokens: a leading BOS written by the chat
    template is dropped when the tokenizer adds its own (one BOS, not two)."""
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and adds_bos(tokenizer):
        return text[len(bos) :]
    return text


def encode(tokenizer: Any, text: str, **kwargs: Any) -> list[int]:
    """Token ids of rendered ``text`` with exactly one BOS (``kwargs``: truncation...)."""
    return tokenizer(tokenizer_text(tokenizer, text), add_special_tokens=True, **kwargs)[
        "input_ids"
    ]


def prompt_ids(
    tokenizer: Any, prompt: Prompt, prompt_format: str = "auto", max_length: int | None = None
) -> list[int]:
    """THE prompt token ids (left-truncated to ``max_length`` when given)."""
    text = render_prompt(tokenizer, prompt, prompt_format)
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        return encode(tokenizer, text, truncation=max_length is not None, max_length=max_length)
    finally:
        tokenizer.truncation_side = side


def _is_special(tokenizer: Any, token_id: int) -> bool:
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return token_id in set(tokenizer.all_special_ids) or (
        token_id in added and bool(getattr(added[token_id], "special", False))
    )


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The special token the chat template writes right after an assistant message."""
    if not has_template(tokenizer):
        return None
    turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(turn, tokenize=False)
    except Exception:  # noqa: BLE001 (templates may refuse this conversation: then no token)
        return None
    if _SENTINEL not in text:
        return None
    after = text.split(_SENTINEL, 1)[1].lstrip()
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    return ids[0] if ids and _is_special(tokenizer, ids[0]) else None


def stop_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """Union of the generation config's EOS ids, the tokenizer's EOS and the end-of-turn."""
    found = getattr(generation_config, "eos_token_id", None)
    ids = list(found) if isinstance(found, list | tuple) else [found]
    ids += [tokenizer.eos_token_id, end_of_turn_id(tokenizer)]
    return sorted({int(i) for i in ids if i is not None})


def sampling_config(
    stop_ids: list[int],
    pad_token_id: int | None,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    num_return_sequences: int = 1,
) -> Any:
    """A sampling ``GenerationConfig`` built from scratch: only the given processors act;
    every other one is set to its neutral value (nothing inherited from the model)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=True,
        num_beams=1,
        num_return_sequences=num_return_sequences,
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        typical_p=1.0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
        repetition_penalty=repetition_penalty,
        encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0,
        renormalize_logits=False,
        remove_invalid_values=False,
        pad_token_id=pad_token_id,
        eos_token_id=list(stop_ids),
    )


def base_of(model: Any) -> Any:
    """The transformers model under PEFT wrappers (the one whose ``generate`` runs)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@contextlib.contextmanager
def own_generation_defaults(model: Any) -> Iterator[None]:
    """During ``generate``, the model's ``generation_config.json`` is replaced by a blank
    config, so unset fields (min_p, sequence_bias, suppress_tokens...) keep library defaults."""
    from transformers import GenerationConfig

    base = base_of(model)
    saved = base.generation_config
    base.generation_config = GenerationConfig()
    try:
        yield
    finally:
        base.generation_config = saved


__all__ = [
    "PROMPT_FORMATS",
    "Prompt",
    "as_messages",
    "encode",
    "end_of_turn_id",
    "own_generation_defaults",
    "prompt_ids",
    "render_completion",
    "render_prompt",
    "sampling_config",
    "stop_token_ids",
    "tokenizer_text",
]

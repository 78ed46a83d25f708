"""training.tiny: an offline tiny causal LM that loads back and generates."""

from __future__ import annotations

from training.tiny import build_tiny_causal_lm


def test_build_tiny_causal_lm_loads_back_and_generates(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_tiny_causal_lm(tmp_path / "m", texts=["How do I keep pasta from sticking?"])
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert build_tiny_causal_lm(folder) == folder  # idempotent: left as it is
    assert (folder / "config.json").stat().st_mtime_ns == stamp
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert tokenizer.unk_token_id not in tokenizer("How do I keep pasta")["input_ids"]
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "pasta ?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.no_grad():
        out = model.generate(
            ids, max_new_tokens=1, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    assert out.shape[1] == ids.shape[1] + 1


def test_family_fixtures_copy_their_quirks(family_model):
    """tests/helpers/families.py: the quirks the regression tests rely on are really there."""
    from transformers import AutoTokenizer, GenerationConfig

    turn = [{"role": "user", "content": "tea"}]
    seen = {}
    for name in ("llama3", "gemma", "qwen25", "mistral"):
        folder = family_model(name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        text = tokenizer.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text)["input_ids"]  # the naive way: template text + special tokens
        seen[name] = (tokenizer, GenerationConfig.from_pretrained(folder), ids)
    llama, llama_generation, llama_ids = seen["llama3"]
    assert llama.pad_token is None and llama.unk_token is None
    assert sorted(llama.all_special_tokens) == ["<|begin_of_text|>", "<|end_of_text|>"]
    assert llama_ids[:2] == [llama.bos_token_id] * 2  # template BOS + tokenizer BOS
    eot = llama.convert_tokens_to_ids("<|eot_id|>")
    assert eot != llama.eos_token_id and llama_generation.eos_token_id == [llama.eos_token_id, eot]
    gemma, gemma_generation, gemma_ids = seen["gemma"]
    assert gemma_ids[:2] == [gemma.bos_token_id] * 2
    assert gemma_generation.eos_token_id == gemma.eos_token_id  # <end_of_turn> not in it
    qwen, qwen_generation, qwen_ids = seen["qwen25"]
    assert qwen.bos_token is None and qwen.pad_token == "<|endoftext|>"
    sampling = (qwen_generation.repetition_penalty, qwen_generation.top_k, qwen_generation.top_p)
    assert sampling == (1.05, 20, 0.8) and qwen_generation.temperature == 0.7
    mistral, _, mistral_ids = seen["mistral"]
    assert mistral_ids[:3] == [mistral.bos_token_id] * 2 + [mistral.convert_tokens_to_ids("[INST]")]

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

"""DPO with LoRA on a tiny Llama: reference = adapter-off base."""

import json

import torch
from conftest import Capture, snapshot, unchanged

import training
from training import dpo as dpo_module

CONFIG = {
    "max_steps": 8,
    "logging_steps": 2,
    "per_device_batch_size": 4,
    "learning_rate": 5e-3,
    "beta": 0.5,
    "eval_fraction": 0.2,
    "precision": "fp32",
    "lora_r": 8,
    "lora_alpha": 16,
}


def test_dpo_trains_adapter_only_and_reloads(tiny_llama, marker_export, tmp_path, monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loads = Capture(monkeypatch, dpo_module, "load_policy")
    base_before = {}

    class Snap(training.Callbacks):
        def on_log(self, step, metrics, samples):
            if not base_before:  # first log: the model is wrapped by now
                base_before["saved"] = snapshot(loads.results[0][0])

    result = training.run(
        "dpo",
        data=marker_export,
        model=str(tiny_llama),
        out=tmp_path / "dpo",
        config=CONFIG,
        callbacks=Snap(),
    )
    policy, tokenizer = loads.results[0]
    lines = [json.loads(x) for x in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if "loss" in x]
    assert len(losses) == 4 and all(0 < loss < 1.0 for loss in losses)
    assert "eval_accuracy" in result.metrics and "eval_margin" in result.metrics
    assert result.metrics["eval_margin"] > 0  # chosen gained on rejected vs the reference
    frozen = [(p, v) for p, v in base_before["saved"] if not p.requires_grad]
    assert frozen and unchanged(frozen)
    lora_b = [p for n, p in policy.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)

    ids = tokenizer(
        ["<|im_start|>user tell me about tea<|im_end|><|im_start|>assistant apple"],
        return_tensors="pt",
    )
    with torch.no_grad():
        expected = policy(**ids).logits
        fresh = AutoModelForCausalLM.from_pretrained(tiny_llama)
        reference = fresh(**ids).logits
        reloaded = PeftModel.from_pretrained(fresh, result.artifact)
        assert torch.allclose(reloaded(**ids).logits, expected, atol=1e-5)
        assert not torch.allclose(reference, expected, atol=1e-4)  # the adapter matters
    info = json.loads((result.out / "run_config.json").read_text())
    assert info["config"]["beta"] == 0.5 and info["kind"] == "dpo"

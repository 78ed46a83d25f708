"""Reward model on tiny Llama and BERT backbones."""

import json

import pytest
import torch
from conftest import Capture, marker_rows, snapshot, unchanged, write_export

import training
from training import reward as reward_module
from training.reward_model import (
    RewardScorer,
    encode_for_reward,
    ensure_distinct_pad,
    load_reward_model,
)

FAST = {
    "max_steps": 60,
    "logging_steps": 10,
    "per_device_batch_size": 8,
    "learning_rate": 3e-3,
    "lora_r": 8,
    "lora_alpha": 16,
    "eval_fraction": 0.25,
    "precision": "fp32",
}


class Recorder(training.Callbacks):
    def __init__(self):
        self.logs = []

    def on_log(self, step, metrics, samples):
        self.logs.append((step, metrics))


@pytest.mark.parametrize("backbone", ["tiny_llama", "tiny_bert"])
def test_reward_model_learns_marker_preference(
    backbone, request, marker_export, tmp_path, monkeypatch
):
    model_dir = request.getfixturevalue(backbone)
    loads = Capture(monkeypatch, reward_module, "load_backbone")
    callbacks = Recorder()
    result = training.run(
        "reward",
        data=marker_export,
        model=str(model_dir),
        out=tmp_path / "rm",
        config=FAST,
        callbacks=callbacks,
    )
    assert result.metrics["eval_accuracy"] >= 0.9
    assert result.metrics["eval_margin"] > 0
    losses = [m["loss"] for _, m in callbacks.logs if "loss" in m]
    assert len(losses) == 6 and losses[-1] < losses[0]
    lines = [json.loads(x) for x in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [10, 20, 30, 40, 50, 60]
    assert lines[-1]["eval_accuracy"] == result.metrics["eval_accuracy"]
    trained = loads.results[0][0]
    lora_b = [p for n, p in trained.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # LoRA B starts at zero


def test_base_frozen_adapter_trained_and_reload_gives_same_scores(
    tiny_llama, small_export, tmp_path, monkeypatch
):
    import transformers

    loads = Capture(monkeypatch, reward_module, "load_backbone")
    saved: list = []
    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        saved.extend(snapshot(self.model.get_base_model()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "train", train)
    result = training.run(
        "reward",
        data=small_export,
        model=str(tiny_llama),
        out=tmp_path / "rm",
        config={**FAST, "max_steps": 5, "use_margin": True},
    )
    trained, tokenizer = loads.results[0]
    frozen = [(p, v) for p, v in saved if not p.requires_grad]
    assert frozen and unchanged(frozen)  # every frozen base weight is untouched
    heads = [(p, v) for p, v in saved if p.requires_grad]
    assert heads and not unchanged(heads)  # LoRA + score head moved
    ids = tokenizer(
        ["apple banana excellent<|im_end|>", "red cloud<|im_end|>"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        expected = trained(**ids).logits
        reloaded, _ = load_reward_model(result.out)
        assert torch.allclose(reloaded(**ids).logits, expected, atol=1e-5)
    scorer = RewardScorer(result.out)
    assert len(scorer(["tell me about tea ."] * 2, ["excellent tea", "tea"])) == 2
    info = json.loads((result.out / "run_config.json").read_text())
    assert info["kind"] == "reward" and info["config"]["use_margin"] is True
    assert (
        info["data"]["sha256"] == json.loads((small_export / "manifest.json").read_text())["sha256"]
    )
    assert "sha256" in (result.out / "README.md").read_text()


def test_encoding_keeps_the_end_and_pad_differs_from_eos(tiny_llama, tiny_bert):
    from transformers import AutoTokenizer

    causal = AutoTokenizer.from_pretrained(tiny_llama)
    causal.pad_token = causal.eos_token
    assert ensure_distinct_pad(causal) is False and causal.pad_token != causal.eos_token
    ids = encode_for_reward(causal, "apple banana cherry river stone", max_length=3)
    assert causal.convert_ids_to_tokens(ids) == ["river", "stone", "<|im_end|>"]
    bert = AutoTokenizer.from_pretrained(tiny_bert)
    ids = encode_for_reward(bert, "apple banana cherry river stone", max_length=4)
    assert bert.convert_ids_to_tokens(ids) == ["[CLS]", "river", "stone", "[SEP]"]


def test_cancel_at_a_logging_step_raises_and_saves_no_adapter(tiny_llama, small_export, tmp_path):
    class StopNow(training.Callbacks):
        def should_stop(self):
            return True

    with pytest.raises(training.Cancelled):
        training.run(
            "reward",
            data=small_export,
            model=str(tiny_llama),
            out=tmp_path / "rm",
            config={**FAST, "logging_steps": 1},
            callbacks=StopNow(),
        )
    lines = (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()
    assert {json.loads(x)["step"] for x in lines} == {1}  # stopped at the first logging step
    assert not (tmp_path / "rm" / "adapter").exists()


def test_missing_data_is_a_value_error(tiny_llama, tmp_path):
    with pytest.raises(ValueError, match="data is required"):
        training.run("reward", model=str(tiny_llama), out=tmp_path / "rm", config={})
    with pytest.raises(ValueError, match="manifest.json is missing"):
        training.run("reward", data=tmp_path, model=str(tiny_llama), out=tmp_path / "rm")


def test_reward_export_with_plain_prompts(tiny_bert, tmp_path):
    export = write_export(tmp_path / "e", marker_rows(8))
    result = training.run(
        "reward",
        data=export,
        model=str(tiny_bert),
        out=tmp_path / "rm",
        config={**FAST, "max_steps": 2},
    )
    assert result.steps == 2 and (result.artifact / "adapter_config.json").is_file()


def test_lora_on_top_layers_only_and_extra_modules_trained_in_full(
    tiny_bert, small_export, tmp_path
):
    from safetensors import safe_open

    result = training.run(
        "reward",
        data=small_export,
        model=str(tiny_bert),
        out=tmp_path / "rm",
        config={**FAST, "max_steps": 2, "lora_layers": 1, "modules_to_save": ["pooler"]},
    )
    with safe_open(result.artifact / "adapter_model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    lora = [k for k in keys if "lora_" in k]
    assert lora and all(".layer.1." in k for k in lora)  # the tiny BERT has layers 0 and 1
    assert {
        "base_model.model.bert.pooler.dense.weight",
        "base_model.model.classifier.weight",
    } <= set(keys)

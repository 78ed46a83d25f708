"""training.memory against hand-computed cases (no torch, no weights)."""

from __future__ import annotations

import pytest

from tests.helpers.families import LLAMA_7B_CONFIG as LLAMA_7B
from training.memory import GB, estimate, lora_params, shape_of, weight_bytes

TINY = {  # small enough to add up by hand
    "model_type": "llama",
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": 10,
    "tie_word_embeddings": True,
}
LAYER_7B = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096  # attention, gated MLP, two norms


def test_a_7b_llama_in_bf16_is_13_5_gb_of_weights():
    shape = shape_of(LLAMA_7B)
    assert shape.params() == 32 * LAYER_7B + 2 * 32000 * 4096 + 4096 == 6_738_415_616
    assert weight_bytes(shape, {"precision": "bf16"}) / GB == pytest.approx(13.48, abs=0.01)
    assert weight_bytes(shape, {"precision": "fp32"}) == 2 * weight_bytes(shape, {})


def test_4bit_weights_keep_embeddings_in_16_bit():
    shape = shape_of(LLAMA_7B)
    layers = 32 * LAYER_7B
    expected = layers * (0.5 + 2 / 64) + (6_738_415_616 - layers) * 2
    assert weight_bytes(shape, {"load_in_4bit": True}) == pytest.approx(expected)
    assert expected / GB == pytest.approx(3.96, abs=0.01)


def test_lora_parameters_of_all_linear_and_named_modules():
    shape = shape_of(LLAMA_7B)
    per_layer = 16 * (4 * 8192 + 2 * (4096 + 11008) + (11008 + 4096))
    assert lora_params(shape, {"lora_r": 16}) == 32 * per_layer == 39_976_960
    attention = {"lora_r": 8, "lora_target_modules": ["q_proj", "v_proj"]}
    assert lora_params(shape, attention) == 32 * 8 * (8192 + 8192)
    assert lora_params(shape, {"lora_r": 16, "lora_layers": 4}) == 4 * per_layer


def test_dpo_plan_of_the_tiny_model_part_by_part():
    config = {"precision": "fp32", "per_device_batch_size": 2, "max_length": 5, "lora_r": 2}
    plan = estimate(TINY, "dpo", config)
    # kv dim 4; linears q 8x8, k 8x4, v 8x4, o 8x8, gate 8x16, up 8x16, down 16x8
    layer = 64 + 32 + 32 + 64 + 128 + 128 + 128 + 16
    assert shape_of(TINY).params() == 2 * layer + 10 * 8 + 8  # tied head counted once
    lora = 2 * 2 * (16 + 12 + 12 + 16 + 24 + 24 + 24)
    tokens = 2 * 2 * 5  # chosen and rejected
    activations = 2 * tokens * (7 * 8 + 2 * 4 + 4 * 16) * 4 + tokens * 10 * 4 * 2
    assert plan.parts == {
        "weights": (2 * layer + 88) * 4,
        "trainable": lora * 4,
        "gradients": lora * 4,
        "optimizer": lora * 8,
        "activations": activations,
    }
    checkpointed = estimate(TINY, "dpo", {**config, "gradient_checkpointing": True})
    expected = 2 * tokens * 8 * 4 + tokens * (7 * 8 + 2 * 4 + 4 * 16) * 4 + tokens * 10 * 8
    assert checkpointed.parts["activations"] == expected < activations


def test_sharding_divides_what_each_strategy_shards():
    config = {"precision": "bf16", "per_device_batch_size": 1, "max_length": 1024}
    ddp = estimate(LLAMA_7B, "dpo", config, processes=4)
    zero2 = estimate(LLAMA_7B, "dpo", {**config, "distributed": "zero2"}, processes=4)
    zero3 = estimate(LLAMA_7B, "dpo", {**config, "distributed": "zero3"}, processes=4)
    assert ddp.parts == estimate(LLAMA_7B, "dpo", config).parts  # ddp replicates everything
    assert zero2.parts["weights"] == ddp.parts["weights"]
    assert zero2.parts["optimizer"] == ddp.parts["optimizer"] / 4
    assert zero3.parts["weights"] == ddp.parts["weights"] / 4
    assert zero3.parts["gathered_layer"] == LAYER_7B * 2
    assert zero3.total < zero2.total < ddp.total


def test_ppo_adds_rollout_tensors_and_the_value_adapter():
    config = {
        "precision": "bf16",
        "rollout_batch_size": 8,
        "mini_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "max_prompt_length": 100,
        "max_new_tokens": 28,
        "lora_r": 16,
        "value_lora_r": 8,
    }
    plan = estimate(LLAMA_7B, "ppo", config)
    assert plan.parts["kv_cache"] == 8 * 128 * 32 * 2 * 4096 * 2
    assert plan.parts["rollout_logits"] == 8 * 28 * 32000 * 4
    trainable = 39_976_960 + 39_976_960 // 2 + 4096
    assert plan.parts["trainable"] == trainable * 4


def test_a_reward_model_has_a_score_head_instead_of_the_lm_head():
    reward = estimate(LLAMA_7B, "reward", {"precision": "bf16"})
    dpo = estimate(LLAMA_7B, "dpo", {"precision": "bf16"})
    assert dpo.parts["weights"] - reward.parts["weights"] == 32000 * 4096 * 2


def test_fits_needs_the_margin_and_the_cuda_context():
    plan = estimate(LLAMA_7B, "dpo", {"precision": "bf16", "gradient_checkpointing": True})
    assert plan.required == pytest.approx(plan.total * 1.1 + 0.5 * GB)
    assert plan.fits(plan.required) and not plan.fits(plan.total)
    assert plan.to_dict()["per_device_gb"] == round(plan.total / GB, 2)


def test_gpt2_style_configs_are_read():
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    shape = shape_of(gpt2)
    assert (shape.hidden, shape.intermediate, shape.tied, shape.gated) == (768, 3072, True, False)
    with pytest.raises(ValueError, match="hidden_size"):
        shape_of({"vocab_size": 3})


def test_a_suspects_run_is_planned_as_the_reward_models_it_trains():
    config = {"precision": "bf16", "lora_r": 8, "per_device_batch_size": 4, "max_length": 512}
    assert estimate(LLAMA_7B, "suspects", config) == estimate(LLAMA_7B, "reward", config)
    assert estimate(LLAMA_7B, "suspects", config) != estimate(LLAMA_7B, "dpo", config)

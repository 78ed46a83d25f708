"""PPO's update runs in train mode with dropout off: gradient checkpointing (promised by the
``7b-24gb`` preset) really recomputes activations, and log-probs equal eval mode's."""

import json
import shutil

import pytest
import torch
from conftest import WORDS, snapshot, unchanged

import training
from training.ppo import _build, _micro_step, ppo_update
from training.ppo_rollout import collect_rollout

PROMPTS = [[{"role": "user", "content": f"tell me about {w}"}] for w in WORDS[:4]]
CONFIG = {
    "max_steps": 1,
    "rollout_batch_size": 4,
    "mini_batch_size": 2,
    "ppo_epochs": 1,
    "max_new_tokens": 4,
    "learning_rate": 1e-2,
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.3,
    "value_lora_r": 4,
    "precision": "fp32",
    "gradient_checkpointing": True,
}


@pytest.fixture(scope="module")
def dropout_llama(tiny_llama, tmp_path_factory):
    """The tiny Llama with attention dropout on (as in checkpoints trained with it)."""
    folder = tmp_path_factory.mktemp("dropout-llama") / "model"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "attention_dropout": 0.5}))
    return folder


def word_count(prompts, completions):
    return [float(len(c.split())) for c in completions]


def test_train_mode_log_probs_equal_eval_mode(dropout_llama):
    config = training.build_config("ppo", overrides=CONFIG)
    model = _build(str(dropout_llama), config, word_count).model
    ids = torch.tensor([[4, 20, 21, 22, 5, 4, 9, 10, 11, 12]] * 2)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        model.eval()
        expected = model.policy_logits(ids, mask), model.values(ids, mask)
    model.train()
    got = model.policy_logits(ids, mask), model.values(ids, mask)  # with grad: checkpointed
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_update_recomputes_activations_and_still_trains_the_adapters(dropout_llama):
    config = training.build_config("ppo", overrides=CONFIG)
    setup = _build(str(dropout_llama), config, word_count)
    rollout = collect_rollout(setup.model, setup.tokenizer, PROMPTS, word_count, 0.05, config)
    layer = setup.model.backbone.layers[0]
    calls = {"layer": 0, "attention": 0}

    def count(name):
        return lambda *args: calls.__setitem__(name, calls[name] + 1)

    # the layer's hooks sit outside the checkpoint; its inner modules' run again in the backward
    # (a pre-hook: the recompute stops early, once it has every tensor the backward needs)
    hooks = [
        layer.register_forward_pre_hook(count("layer")),
        layer.self_attn.register_forward_pre_hook(count("attention")),
    ]
    policy = snapshot(torch.nn.ParameterList(setup.model.adapter_parameters("default")))
    try:
        ppo_update(setup, rollout, config)
    finally:
        for hook in hooks:
            hook.remove()
    # 2 micro-batches x (policy + value) forwards, each layer run again in the backward pass
    assert calls == {"layer": 4, "attention": 8}
    assert not unchanged(policy)  # gradients reach the LoRA weights through the checkpoints
    assert not setup.model.training  # back in eval mode for the next rollout


def micro_step_grads(setup, rollout, config):
    """Gradients of one PPO micro-step (policy then value loss), in train mode."""
    setup.model.train()
    _micro_step(setup, rollout, torch.arange(2), config)
    grads = {n: p.grad.clone() for n, p in setup.model.named_parameters() if p.grad is not None}
    setup.optimizer.zero_grad(set_to_none=True)
    setup.model.eval()
    return grads


def test_checkpointed_gradients_equal_plain_ones(dropout_llama):
    # ranks differ, as by default (16 and 8): a backward that recomputes the value pass with
    # the policy adapter active fails (or, with equal shapes, could go wrong silently)
    config = training.build_config("ppo", overrides={**CONFIG, "value_lora_r": 8})
    setup = _build(str(dropout_llama), config, word_count)
    torch.manual_seed(0)
    with torch.no_grad():  # adapters that differ: LoRA B starts at zero
        for name, param in setup.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    rollout = collect_rollout(setup.model, setup.tokenizer, PROMPTS, word_count, 0.05, config)
    checkpointed = micro_step_grads(setup, rollout, config)
    setup.model.peft.get_base_model().activation_checkpointing_disable()
    plain = micro_step_grads(setup, rollout, config)
    assert any(".value." in n for n in plain) and any(".default." in n for n in plain)
    assert sorted(checkpointed) == sorted(plain)
    for name, grad in plain.items():  # the value loss is recomputed with the value adapter
        assert torch.allclose(checkpointed[name], grad, atol=1e-6), name

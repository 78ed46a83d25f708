"""PPO's reward model on the policy's base: only LoRA tensors may go into the shared base.

A reward run that trained weights of the base itself (``modules_to_save`` such as
``model.norm``) or resized its embeddings (Llama 3 has no pad token) must leave the frozen base
that serves policy, reference and value bit-identical."""

import logging

import pytest
import torch
from conftest import marker_rows, write_export

import training
from tests.helpers.families import build_llama3_like
from training import ppo_reward
from training.ppo import _build
from training.ppo_models import SharedBaseReward
from training.reward_model import RewardScorer

PPO = {"max_steps": 1, "precision": "fp32", "lora_r": 4, "lora_alpha": 8, "value_lora_r": 4}
RM = {"max_steps": 2, "precision": "fp32", "lora_r": 4, "learning_rate": 1e-2}
TEXTS = (["tell me about apple", "red", "tell me about tea"], ["apple excellent", "red", "tea"])


@pytest.fixture(scope="module")
def chat_export(tmp_path_factory):
    return write_export(tmp_path_factory.mktemp("rm-export"), marker_rows(8, chat=True))


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    return build_llama3_like(tmp_path_factory.mktemp("llama3"))


@pytest.fixture(scope="module")
def llama3_reward(llama3, chat_export, tmp_path_factory):
    """A reward run on the Llama-3-like base: a pad token added, embeddings resized."""
    out = tmp_path_factory.mktemp("rm-llama3")
    return training.run("reward", data=chat_export, model=str(llama3), out=out, config=RM).out


@pytest.fixture(scope="module")
def norm_reward(tiny_llama, chat_export, tmp_path_factory):
    """A reward run that trains the base's final norm in full (modules_to_save)."""
    config = {**RM, "modules_to_save": ["model.norm"]}
    out = tmp_path_factory.mktemp("rm-norm")
    return training.run(
        "reward", data=chat_export, model=str(tiny_llama), out=out, config=config
    ).out


def assert_base_pristine(setup, folder):
    """Every weight of the shared base equals the checkpoint's, bit for bit."""
    from transformers import AutoModelForCausalLM

    fresh = dict(AutoModelForCausalLM.from_pretrained(folder).named_parameters())
    now = {
        n.replace(".base_layer.", "."): p
        for n, p in setup.model.peft.get_base_model().named_parameters()
        if "lora_" not in n
    }
    assert set(now) == set(fresh)
    changed = [n for n, p in fresh.items() if not torch.equal(now[n], p)]
    assert changed == []


def test_resized_embeddings_reward_shares_the_base_and_leaves_it_identical(llama3, llama3_reward):
    config = training.build_config("ppo", overrides=PPO)
    setup = _build(str(llama3), config, llama3_reward)
    assert_base_pristine(setup, llama3)
    assert isinstance(setup.reward_fn, SharedBaseReward)  # only the pad row was new
    shared = setup.reward_fn(*TEXTS)
    assert shared == pytest.approx(RewardScorer(llama3_reward)(*TEXTS), abs=1e-4)


def test_shared_base_reward_renders_prompts_as_its_run_recorded(llama3, chat_export, tmp_path):
    """A reward run trained on raw text is scored on raw text on the shared base too."""
    config = {**RM, "prompt_format": "raw"}
    reward = training.run(
        "reward", data=chat_export, model=str(llama3), out=tmp_path, config=config
    )
    setup = _build(str(llama3), training.build_config("ppo", overrides=PPO), reward.out)
    assert isinstance(setup.reward_fn, SharedBaseReward)
    shared = setup.reward_fn(*TEXTS)
    assert shared == pytest.approx(RewardScorer(reward.out)(*TEXTS), abs=1e-4)


def test_modules_to_save_reward_is_loaded_apart_and_leaves_the_base_identical(
    tiny_llama, norm_reward, caplog
):
    config = training.build_config("ppo", overrides=PPO)
    with caplog.at_level(logging.WARNING, logger="training.ppo"):
        setup = _build(str(tiny_llama), config, norm_reward)
    assert_base_pristine(setup, tiny_llama)
    assert isinstance(setup.reward_fn, RewardScorer)
    assert "model.norm" in setup.notes and "GiB more" in setup.notes
    assert setup.notes in caplog.text
    assert setup.reward_fn(*TEXTS) == pytest.approx(RewardScorer(norm_reward)(*TEXTS), abs=1e-6)


def test_a_separate_reward_model_that_cannot_fit_is_refused(tiny_llama, norm_reward, monkeypatch):
    monkeypatch.setattr(ppo_reward, "free_memory", lambda device: 1024)
    config = training.build_config("ppo", overrides=PPO)
    with pytest.raises(RuntimeError, match=r"cannot share .*model\.norm.* GiB"):
        _build(str(tiny_llama), config, norm_reward)


def test_value_function_starts_as_the_reward_model(llama3, llama3_reward):
    config = training.build_config("ppo", overrides={**PPO, "value_init": "reward"})
    setup = _build(str(llama3), config, llama3_reward)
    model = setup.model
    assert torch.equal(model.value_head.weight, model.reward_head.weight)
    assert torch.count_nonzero(model.value_head.bias) == 0
    ids = torch.tensor([[1, 20, 21, 22, 30, 31], [1, 23, 24, 25, 26, 27]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        values = model.values(ids, mask)
    assert values[:, -1].tolist() == pytest.approx(model.reward_scores(ids, mask).tolist())
    trained = {id(p) for group in setup.optimizer.param_groups for p in group["params"]}
    value_lora = model.adapter_parameters("value")
    assert value_lora and all(id(p) in trained and p.requires_grad for p in value_lora)
    assert not any(p.requires_grad for p in model.adapter_parameters("reward"))


def test_value_from_reward_needs_a_reward_model_on_the_same_base(tiny_llama):
    config = training.build_config("ppo", overrides={**PPO, "value_init": "reward"})
    with pytest.raises(training.config.ConfigError, match="^value_init ") as caught:
        _build(str(tiny_llama), config, lambda prompts, completions: [0.0] * len(completions))
    assert caught.value.field == "value_init"

"""Run configurations: layering, presets, files and validation errors naming the field."""

import json
import re

import pytest

from training.config import (
    PRESETS,
    ConfigError,
    DPORunConfig,
    GenerateRunConfig,
    PPORunConfig,
    RewardRunConfig,
    build_config,
    coerce_config,
)


def test_layers_apply_in_order_defaults_preset_file_overrides(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("max_steps: 7\nlearning_rate: 0.002\n")
    config = build_config("reward", preset="tiny-cpu", file=file, overrides={"max_steps": 9})
    assert isinstance(config, RewardRunConfig)
    assert config.max_steps == 9  # override beats file
    assert config.learning_rate == 0.002  # file beats default
    assert config.lora_r == PRESETS["tiny-cpu"]["reward"]["lora_r"]  # preset beats default
    assert config.use_margin is False  # untouched default


def test_json_file_and_int_widened_to_float(tmp_path):
    file = tmp_path / "run.json"
    file.write_text(json.dumps({"beta": 1, "loss_type": "ipo"}))
    config = build_config("dpo", file=file)
    assert isinstance(config, DPORunConfig)
    assert config.beta == 1.0 and isinstance(config.beta, float)
    assert config.loss_type == "ipo"


@pytest.mark.parametrize("kind", ["reward", "dpo", "ppo", "generate"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_or_names_the_kinds_it_is_for(kind, preset):
    if kind in PRESETS[preset]:
        build_config(kind, preset=preset)
        return
    with pytest.raises(ConfigError, match=f"preset '{preset}' is for .* not {kind}") as caught:
        build_config(kind, preset=preset)
    assert caught.value.field == "preset"


def test_encoder_preset_fully_fine_tunes_a_reward_model_only():
    config = build_config("reward", preset="encoder-cpu")
    assert config.full_finetune and config.max_steps > 0 and config.eval_fraction >= 0.2
    assert set(PRESETS["encoder-cpu"]) == {"reward", "suspects"}  # suspects trains reward models


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_suspects_config(preset):
    """The encoder preset's held-out split once made its suspects config refuse itself."""
    config = build_config("suspects", preset=preset)
    assert config.eval_fraction == 0 and config.dev_fraction == 0


@pytest.mark.parametrize(
    ("kind", "overrides", "field"),
    [
        ("reward", {"max_steps": "ten"}, "max_steps"),
        ("reward", {"max_steps": True}, "max_steps"),
        ("reward", {"lora_r": 0}, "lora_r"),
        ("reward", {"eval_fraction": 1.0}, "eval_fraction"),
        ("reward", {"precision": "fp16"}, "precision"),
        ("dpo", {"beta": 0}, "beta"),
        ("dpo", {"loss_type": "nope"}, "loss_type"),
        ("ppo", {"mini_batch_size": 3}, "mini_batch_size"),
        ("ppo", {"gradient_accumulation_steps": 3}, "gradient_accumulation_steps"),
        ("ppo", {"lam": 1.5}, "lam"),
        ("ppo", {"lora_target_modules": [1]}, "lora_target_modules[0]"),
        ("generate", {"n": 1}, "n"),
        ("generate", {"n": 5, "mix_base": True}, "n"),
        ("generate", {"temperature": 0}, "temperature"),
        # options TRL would ignore or reject only once the trainer is built
        ("dpo", {"label_smoothing": 0.1}, "label_smoothing"),  # sigmoid ignores it
        ("dpo", {"loss_type": "ipo", "label_smoothing": 0.1}, "label_smoothing"),
        ("dpo", {"loss_type": "exo_pair"}, "label_smoothing"),  # TRL refuses 0
        ("dpo", {"lora_target_modules": ["q_proj", "lm_head"]}, "lora_target_modules"),
        ("reward", {"margin_scale": 2.0}, "margin_scale"),  # without use_margin: unused
        ("reward", {"eval_steps": 5, "eval_fraction": 0.0}, "eval_steps"),
        # PPO log-probs use the full softmax: no truncated sampling
        ("ppo", {"top_k": 50}, "top_k"),
        ("ppo", {"top_p": 0.9}, "top_p"),
        ("ppo", {"missing_eos_penalty": -1.0}, "missing_eos_penalty"),
        ("ppo", {"reward_clip_range": [2.0, -2.0]}, "reward_clip_range"),
        ("ppo", {"reward_clip_range": [1.0]}, "reward_clip_range"),
        ("ppo", {"value_init": "critic"}, "value_init"),
    ],
)
def test_bad_values_raise_naming_the_field(kind, overrides, field):
    with pytest.raises(ConfigError, match="^" + re.escape(field) + " ") as caught:
        build_config(kind, overrides=overrides)
    assert caught.value.field == field.split("[")[0]
    assert isinstance(caught.value, ValueError)  # old callers catch ValueError


def test_options_that_trl_uses_are_accepted():
    assert build_config("dpo", overrides={"loss_type": "robust", "label_smoothing": 0.1})
    assert build_config("dpo", overrides={"loss_type": "exo_pair", "label_smoothing": 1e-3})
    assert build_config("reward", overrides={"use_margin": True, "margin_scale": 2.0})
    ppo = build_config(
        "ppo",
        overrides={
            "missing_eos_penalty": 1.0,
            "normalize_reward": True,
            "reward_clip_range": [-5, 5],
            "value_init": "reward",
        },
    )
    assert ppo.reward_clip_range == [-5.0, 5.0]


def test_7b_preset_checkpoints_gradients_in_every_trained_kind():
    for kind in ("reward", "dpo", "ppo"):
        assert build_config(kind, preset="7b-24gb").gradient_checkpointing is True


def test_unknown_field_kind_preset_and_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown field.*max_stepz") as caught:
        build_config("reward", overrides={"max_stepz": 3})
    assert caught.value.field == "max_stepz"
    with pytest.raises(ConfigError) as caught:
        build_config("dpo", preset="huge")
    assert caught.value.field == "preset"
    with pytest.raises(ValueError, match="unknown field.*beta"):
        build_config("reward", overrides={"beta": 0.1})  # a DPO field, not a reward one
    with pytest.raises(ValueError, match="kind must be one of"):
        build_config("sft")
    with pytest.raises(ValueError, match="preset must be one of"):
        build_config("dpo", preset="huge")
    with pytest.raises(ValueError, match="does not exist"):
        build_config("dpo", file=tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        build_config("dpo", file=bad)


def test_coerce_config_accepts_dict_or_matching_object():
    assert coerce_config("ppo", {"max_steps": 2}).max_steps == 2
    assert isinstance(coerce_config("generate", None), GenerateRunConfig)
    ready = PPORunConfig(max_steps=4)
    assert coerce_config("ppo", ready) is ready
    with pytest.raises(ValueError, match="PPORunConfig"):
        coerce_config("ppo", DPORunConfig())


def test_direct_construction_validates_too():
    with pytest.raises(ValueError, match="^rollout_batch_size "):
        PPORunConfig(rollout_batch_size=0)
    assert RewardRunConfig(lora_target_modules=["q_proj"]).lora_target_modules == ["q_proj"]

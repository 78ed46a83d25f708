"""Run configurations: layering, presets, files and validation errors naming the field."""

import json
import re

import pytest

from training.config import (
    PRESETS,
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
def test_every_preset_builds(kind, preset):
    build_config(kind, preset=preset)


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
    ],
)
def test_bad_values_raise_naming_the_field(kind, overrides, field):
    with pytest.raises(ValueError, match="^" + re.escape(field) + " "):
        build_config(kind, overrides=overrides)


def test_unknown_field_kind_preset_and_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown field.*max_stepz"):
        build_config("reward", overrides={"max_stepz": 3})
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

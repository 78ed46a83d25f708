"""PPO on a tiny Llama with a toy reward (count of one word), and with a trained reward model."""

import json
import statistics

import pytest
import torch
from conftest import WORDS, Capture

import training
from training import ppo as ppo_module
from training.ppo_models import SharedBaseReward, same_base
from training.reward_model import RewardScorer

PROMPTS = [
    {"id": f"p{i}", "prompt": [{"role": "user", "content": f"tell me about {w}"}]}
    for i, w in enumerate(WORDS[:10])
]
TOY = {
    "rollout_batch_size": 16,
    "mini_batch_size": 8,
    "ppo_epochs": 2,
    "max_new_tokens": 6,
    "learning_rate": 1e-2,
    "lora_r": 8,
    "lora_alpha": 16,
    "value_lora_r": 4,
    "lora_target_modules": ["q_proj", "v_proj", "lm_head"],
    "precision": "fp32",
    "sample_every": 10,
    "logging_steps": 1,
}
KL_BOUND = 8.0  # nats per completion; the optimum at kl_coef 0.3 is ~4, reward hacking ~24


def apple_count(prompts, completions):
    return [float(c.split().count("apple")) for c in completions]


def run_toy(model_dir, out, kl_coef, steps):
    from training.ppo import train_ppo

    config = training.build_config("ppo", overrides={**TOY, "max_steps": steps, "kl_coef": kl_coef})
    train_ppo(PROMPTS, str(model_dir), out, config, apple_count)
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def window(metrics, key, part):
    return statistics.mean(m[key] for m in part(metrics))


def test_ppo_raises_toy_reward_within_kl_bound_and_hacks_without_kl(tiny_llama, tmp_path):
    def first(m):
        return m[:5]

    def last(m):
        return m[-8:]

    kept = run_toy(tiny_llama, tmp_path / "kl", kl_coef=0.3, steps=30)
    assert window(kept, "reward", last) > window(kept, "reward", first) + 0.5
    assert window(kept, "kl", last) < KL_BOUND
    free = run_toy(tiny_llama, tmp_path / "nokl", kl_coef=0.0, steps=20)  # fewer steps...
    assert window(free, "reward", last) > window(kept, "reward", last) + 2.0  # ...more reward
    assert window(free, "kl", last) > 2 * KL_BOUND  # far from the reference: reward hacking
    logged = set(kept[0])
    assert {
        "reward",
        "kl",
        "kl_coef",
        "policy_loss",
        "value_loss",
        "entropy",
        "clip_fraction",
        "approx_kl",
    } <= logged
    samples = [json.loads(x) for x in (tmp_path / "kl" / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [10, 20, 30]
    assert set(samples[0]["samples"][0]) == {"prompt", "completion", "reward"}


def test_ppo_artifacts_reload_and_base_is_frozen(tiny_llama, tmp_path, monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    builds = Capture(monkeypatch, ppo_module, "_build")
    steps = []

    class Log(training.Callbacks):
        def on_log(self, step, metrics, samples):
            steps.append((step, samples))

    from training.ppo import train_ppo

    config = training.build_config(
        "ppo",
        overrides={
            **TOY,
            "max_steps": 3,
            "sample_every": 2,
            "adaptive_kl": True,
            "whiten_rewards": True,
        },
    )
    fresh = AutoModelForCausalLM.from_pretrained(tiny_llama)
    result = train_ppo(PROMPTS, str(tiny_llama), tmp_path / "ppo", config, apple_count, Log())
    assert [s for s, _ in steps] == [1, 2, 3] and steps[1][1] and steps[0][1] is None
    model = builds.results[0].model
    base_now = dict(model.peft.get_base_model().named_parameters())
    for name, param in fresh.named_parameters():
        key = name.replace(".weight", ".base_layer.weight")
        assert torch.equal((base_now.get(name) if name in base_now else base_now[key]), param)
    ids = torch.tensor([[4, 20, 21, 22, 5, 4, 9]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected, values = model.policy_logits(ids, mask), model.values(ids, mask)
        reloaded = PeftModel.from_pretrained(fresh, result.artifact)
        assert torch.allclose(
            reloaded(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5
        )
        assert not torch.allclose(model.reference_logits(ids, mask), expected, atol=1e-4)
        model.value_head.reset_parameters()
        model.load_value(result.out)
        assert torch.allclose(model.values(ids, mask), values, atol=1e-5)


def test_reward_adapter_on_the_same_base_matches_the_reward_model(
    tiny_llama, marker_export, tmp_path
):
    rm = training.run(
        "reward",
        data=marker_export,
        model=str(tiny_llama),
        out=tmp_path / "rm",
        config={"max_steps": 3, "precision": "fp32", "lora_r": 4},
    )
    assert same_base(rm.out, str(tiny_llama)) and not same_base(rm.out, "other/model")
    from training.ppo import _build

    config = training.build_config("ppo", overrides={**TOY, "max_steps": 1})
    setup = _build(str(tiny_llama), config, rm.out)
    assert isinstance(setup.reward_fn, SharedBaseReward)
    prompts = [p["prompt"] for p in PROMPTS[:3]]
    completions = ["apple excellent tea", "red", "excellent"]
    shared = setup.reward_fn(prompts, completions)
    separate = RewardScorer(rm.out)(prompts, completions)
    assert shared == pytest.approx(separate, abs=1e-4)


def test_ppo_through_run_with_reward_run_folder_and_cancel(
    tiny_bert, tiny_llama, marker_export, tmp_path
):
    rm = training.run(
        "reward",
        data=marker_export,
        model=str(tiny_bert),
        out=tmp_path / "rm",
        config={"max_steps": 2, "precision": "fp32", "lora_r": 4},
    )
    result = training.run(
        "ppo",
        data=marker_export,
        model=str(tiny_llama),
        out=tmp_path / "ppo",
        reward=rm.out,
        config={**TOY, "max_steps": 2},
    )
    assert result.steps == 2 and (result.artifact / "adapter_config.json").is_file()
    info = json.loads((result.out / "run_config.json").read_text())
    assert info["data"]["reward"] == str(rm.out) and "sha256" in info["data"]

    class Stop(training.Callbacks):
        def should_stop(self):
            return True

    with pytest.raises(training.Cancelled):
        training.run(
            "ppo",
            data=marker_export,
            model=str(tiny_llama),
            out=tmp_path / "c",
            reward=rm.out,
            config={**TOY, "max_steps": 5},
            callbacks=Stop(),
        )
    assert len((tmp_path / "c" / "metrics.jsonl").read_text().splitlines()) == 1
    with pytest.raises(ValueError, match="reward is required"):
        training.run("ppo", data=marker_export, model=str(tiny_llama), out=tmp_path / "x")


def test_rollout_scores_are_penalised_without_a_stop_token_and_clipped(tiny_llama):
    from training.ppo import _build
    from training.ppo_rollout import collect_rollout

    overrides = {**TOY, "max_new_tokens": 3, "missing_eos_penalty": 5.0}
    config = training.build_config("ppo", overrides={**overrides, "reward_clip_range": [-4, 9]})
    setup = _build(str(tiny_llama), config, lambda prompts, completions: [1.0] * len(completions))
    prompts = [p["prompt"] for p in PROMPTS[:4]] * 4
    rollout = collect_rollout(
        setup.model, setup.tokenizer, prompts, setup.reward_fn, 0.05, config, setup.shaping
    )
    assert rollout.raw_scores.tolist() == [1.0] * 16
    assert not rollout.ended.all()  # a random tiny model rarely stops within 3 tokens
    expected = [1.0 if ended else -4.0 for ended in rollout.ended.tolist()]  # 1 - 5, clipped
    assert rollout.scores.tolist() == expected


def test_normalised_rewards_train_and_report_the_raw_reward(tiny_llama, tmp_path):
    from training.ppo import train_ppo

    overrides = {**TOY, "max_steps": 2, "normalize_reward": True, "max_new_tokens": 4}
    config = training.build_config("ppo", overrides=overrides)
    train_ppo(PROMPTS, str(tiny_llama), tmp_path, config, apple_count)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert abs(lines[0]["reward_shaped"]) < 1e-5  # the first batch: centred on its own mean
    assert all(m["reward"] >= 0 and 0 <= m["ended_fraction"] <= 1 for m in lines)

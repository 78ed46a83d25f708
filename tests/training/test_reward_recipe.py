"""Reward recipe options: full fine-tune, a dev split carved from train, best-on-dev selection
with early stopping (tiny BERT, seconds)."""

import json

import pytest
import torch
from conftest import Capture, snapshot, unchanged

import training
from training import reward as reward_module
from training.config import build_config
from training.data import load_export, prompt_key, split_by_prompt
from training.reward_best import KeepBestOnDev
from training.reward_model import load_reward_model

FAST = {
    "max_steps": 4,
    "logging_steps": 1,
    "per_device_batch_size": 8,
    "learning_rate": 3e-3,
    "eval_fraction": 0.25,
    "precision": "fp32",
}


def _base_params(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return [(n, p) for n, p in base.named_parameters() if "lora_" not in n]


@pytest.mark.parametrize("full", [True, False])
def test_full_finetune_trains_the_base_lora_leaves_it_frozen(
    full, tiny_bert, small_export, tmp_path, monkeypatch
):
    import transformers

    loads = Capture(monkeypatch, reward_module, "load_backbone")
    before: dict = {}
    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        encoder = [(n, p) for n, p in _base_params(self.model) if ".encoder." in n]
        before.update({n: p.detach().clone() for n, p in encoder})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "train", train)
    result = training.run(
        "reward",
        data=small_export,
        model=str(tiny_bert),
        out=tmp_path / "rm",
        config={**FAST, "full_finetune": full},
    )
    trained, tokenizer = loads.results[0]
    after = dict(_base_params(trained))
    moved = [n for n, value in before.items() if not torch.equal(after[n].detach(), value)]
    assert before and (len(moved) == len(before) if full else moved == [])
    saved = {p.name for p in (result.out / "adapter").iterdir()}
    assert ("adapter_config.json" in saved) is not full
    ids = tokenizer(["apple banana excellent", "red cloud"], padding=True, return_tensors="pt")
    trained.eval()
    with torch.no_grad():
        reloaded, _ = load_reward_model(result.out)
        assert torch.allclose(reloaded(**ids).logits, trained(**ids).logits, atol=1e-5)


def test_dev_split_comes_from_train_and_leaves_held_out_as_it_was(tiny_bert, small_export):
    from transformers import AutoTokenizer

    export = load_export(small_export)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    base = build_config("reward", overrides={"eval_fraction": 0.25})
    with_dev = build_config(
        "reward", overrides={"eval_fraction": 0.25, "dev_fraction": 0.3, "eval_steps": 1}
    )
    train0, dev0, held0 = reward_module._datasets(export, tokenizer, base)
    train1, dev1, held1 = reward_module._datasets(export, tokenizer, with_dev)
    assert dev0 is None and dev1 is not None and len(dev1) > 0
    assert list(held1["chosen_ids"]) == list(held0["chosen_ids"])  # held-out untouched
    assert sorted([*train1["chosen_ids"], *dev1["chosen_ids"]]) == sorted(train0["chosen_ids"])
    train_rows, held_rows = split_by_prompt(export.rows, 0.25, 42)
    assert {prompt_key(r) for r in held_rows}.isdisjoint(prompt_key(r) for r in train_rows)


def test_early_stopping_restores_the_best_dev_weights(
    tiny_bert, small_export, tmp_path, monkeypatch
):
    """Dev accuracies are scripted (0.5, 0.9, 0.6, 0.7 at steps 1-4): with patience 2 training
    stops at step 4, the weights of step 2 come back, and the held-out split is evaluated once
    at the end with those weights."""
    loads = Capture(monkeypatch, reward_module, "load_backbone")
    script = iter([0.5, 0.9, 0.6, 0.7, 0.1, 0.1])
    seen: dict[int, dict] = {}
    original = KeepBestOnDev.on_evaluate

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if "eval_dev_loss" in metrics:  # not the final held-out evaluation
            metrics.pop("eval_accuracy", None)  # TRL's name, renamed by the selector's on_log
            metrics["eval_dev_accuracy"] = next(script)
            seen[state.global_step] = {n: p.detach().clone() for n, p in model.named_parameters()}
        return original(self, args, state, control, metrics=metrics, model=model, **kwargs)

    monkeypatch.setattr(KeepBestOnDev, "on_evaluate", on_evaluate)
    config = {
        **FAST,
        "max_steps": 10,
        "full_finetune": True,
        "dev_fraction": 0.3,
        "eval_steps": 1,
        "early_stopping_patience": 2,
    }
    result = training.run(
        "reward", data=small_export, model=str(tiny_bert), out=tmp_path / "rm", config=config
    )
    assert result.steps == 4 and sorted(seen) == [1, 2, 3, 4]
    final = dict(loads.results[0][0].named_parameters())
    assert all(torch.equal(final[n].detach(), v) for n, v in seen[2].items())
    assert not all(torch.equal(final[n].detach(), v) for n, v in seen[4].items())
    lines = [json.loads(x) for x in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    dev_lines = [x for x in lines if "eval_dev_loss" in x]
    assert [x["step"] for x in dev_lines] == [1, 2, 3, 4]
    assert all("eval_dev_accuracy" in x and "eval_accuracy" not in x for x in dev_lines)
    assert [x["best_dev_step"] for x in lines if "best_dev_step" in x] == [2]
    held_out = [x for x in lines if "eval_accuracy" in x]
    assert len(held_out) == 1 and held_out[0]["step"] == 4
    assert result.metrics["eval_accuracy"] == held_out[0]["eval_accuracy"]


@pytest.mark.parametrize("eval_fraction", [0.25, 0.0])
def test_lora_with_dev_selection_saves_an_adapter(eval_fraction, tiny_bert, small_export, tmp_path):
    """LoRA + a dev split, with and without a held-out split (a judge trained on all its data
    still picks its best weights on dev); the last step is evaluated on dev even off the
    eval_steps grid; the adapter reloads."""
    config = {
        **FAST,
        "eval_fraction": eval_fraction,
        "dev_fraction": 0.3,
        "eval_steps": 3,
        "early_stopping_patience": 2,
    }
    result = training.run(
        "reward", data=small_export, model=str(tiny_bert), out=tmp_path / "rm", config=config
    )
    assert (result.out / "adapter" / "adapter_config.json").is_file()
    assert ("eval_accuracy" in result.metrics) is (eval_fraction > 0)
    lines = [json.loads(x) for x in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "eval_dev_loss" in x] == [3, 4]  # the last step too
    assert [x["step"] for x in lines if "best_dev_step" in x] == [result.steps]
    load_reward_model(result.out)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"full_finetune": True, "lora_layers": 2}, "lora_layers"),
        ({"full_finetune": True, "modules_to_save": ["pooler"]}, "modules_to_save"),
        ({"dev_fraction": 0.2}, "dev_fraction"),
        ({"dev_fraction": 1.0, "eval_steps": 5}, "dev_fraction"),
        ({"early_stopping_patience": 2}, "early_stopping_patience"),
        ({"early_stopping_patience": 0, "dev_fraction": 0.1, "eval_steps": 5}, "early_stopping"),
    ],
)
def test_recipe_options_are_validated(overrides, field):
    with pytest.raises(ValueError, match=field):
        build_config("reward", overrides=overrides)


def test_selector_ignores_the_final_held_out_evaluation():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

    model, state = Model(), type("State", (), {"global_step": 3})()
    control = type("Control", (), {"should_training_stop": False})()
    selector = KeepBestOnDev(patience=1, heldout=None)
    selector.on_evaluate(None, state, control, metrics={"eval_accuracy": 0.9}, model=model)
    selector.on_evaluate(None, state, control, metrics={"eval_loss": 0.1}, model=model)
    assert selector.best_state == {} and not control.should_training_stop
    saved = snapshot(model)
    selector.on_train_end(None, state, control, model=model)
    assert unchanged(saved)


def test_the_hh_recipe_file_is_a_valid_reward_config():
    """bench/configs/reward-minilm-hh.json is what `prefloop train reward --config` reads."""
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "bench" / "configs" / "reward-minilm-hh.json"
    config = build_config("reward", file=recipe, overrides={"eval_fraction": 0.2})
    assert config.full_finetune and config.dev_fraction > 0 and config.eval_steps


def test_ppo_loads_a_full_finetune_reward_on_its_base_as_a_separate_model(
    tiny_llama, small_export, tmp_path
):
    """A full fine-tune reward run holds no LoRA adapter: PPO on the same base scores with it
    as a separate model and leaves the shared base as it was."""
    from transformers import AutoModelForCausalLM

    from training.ppo import _build
    from training.reward_model import RewardScorer

    reward = training.run(
        "reward",
        data=small_export,
        model=str(tiny_llama),
        out=tmp_path / "rm",
        config={**FAST, "max_steps": 2, "full_finetune": True},
    )
    ppo = {"max_steps": 1, "precision": "fp32", "lora_r": 4, "lora_alpha": 8, "value_lora_r": 4}
    setup = _build(str(tiny_llama), training.build_config("ppo", overrides=ppo), reward.out)
    assert isinstance(setup.reward_fn, RewardScorer)
    fresh = dict(AutoModelForCausalLM.from_pretrained(tiny_llama).named_parameters())
    base = setup.model.peft.get_base_model().named_parameters()
    now = {n.replace(".base_layer.", "."): p for n, p in base if "lora_" not in n}
    assert all(torch.equal(now[n], p) for n, p in fresh.items())
    texts = (["tell me about tea"], ["excellent tea"])
    assert setup.reward_fn(*texts) == pytest.approx(RewardScorer(reward.out)(*texts), abs=1e-6)


def test_same_seed_same_reward_model(tiny_bert, small_export, tmp_path):
    """The new score head's random init is seeded too: two runs with one seed give the same
    model (the HH bench figures moved between identical runs before)."""
    torch.manual_seed(1)  # whatever the global RNG held before each run
    first = training.run(
        "reward", data=small_export, model=str(tiny_bert), out=tmp_path / "a", config=FAST
    )
    torch.rand(7)
    second = training.run(
        "reward", data=small_export, model=str(tiny_bert), out=tmp_path / "b", config=FAST
    )
    ids = {"input_ids": torch.tensor([[2, 5, 6, 7, 3]])}
    with torch.no_grad():
        a, b = (load_reward_model(r.out)[0](**ids).logits for r in (first, second))
    assert torch.equal(a, b)

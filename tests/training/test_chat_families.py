"""Model families (tests/helpers/families.py) through reward, DPO, PPO rollouts and generate.

Regression tests of issue 9 §1: one BOS (bug 4), stop ids (bug 3), rollout sampling = the
distribution PPO scores (bug 2), plain prompts as a user turn and no silent empty completions
(bug 6). They use only entry points that existed before the fixes.
"""

from __future__ import annotations

import copy
import json

import pytest
from conftest import Capture

from tests.helpers.families import FAMILIES, ScriptedHead, eos_only

TURN = [{"role": "user", "content": "tell me about tea"}]
CHAT_ROW = {
    "prompt": TURN,
    "chosen": [{"role": "assistant", "content": "rain"}],
    "rejected": [{"role": "assistant", "content": "sun moon"}],
    "prompt_id": "p0",
}
PPO_TINY = {
    "max_new_tokens": 6,
    "rollout_batch_size": 2,
    "mini_batch_size": 2,
    "precision": "fp32",
    "lora_r": 4,
    "value_lora_r": 4,
}


def chat_ids(tokenizer, messages):
    """What the model's own chat template gives (the reference: one BOS)."""
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]


def load(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(folder).eval(), tokenizer


def policy_value(base, **overrides):
    from training.config import build_config
    from training.ppo_models import PolicyValueModel
    from training.trl_common import lora_config

    config = build_config("ppo", overrides={**PPO_TINY, **overrides})
    value = lora_config(config, "CAUSAL_LM", r=config.value_lora_r)
    return PolicyValueModel(base, lora_config(config, "CAUSAL_LM"), value), config


def zero_reward(prompts, completions):
    return [0.0] * len(completions)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_one_conversational_row_gives_the_same_prompt_ids_everywhere(name, family_model, tmp_path):
    """Bug 4: reward and DPO tokenized the rendered template WITH special tokens (two BOS)."""
    import torch

    from training.config import build_config
    from training.data import encode_prompts
    from training.dpo import _build_trainer, load_policy
    from training.reward import load_backbone, tokenize_pairs

    folder = family_model(name)
    policy, tokenizer = load_policy(str(folder), torch.float32)
    expected = chat_ids(tokenizer, TURN)
    assert expected.count(tokenizer.bos_token_id) == (1 if FAMILIES[name].bos_in_template else 0)
    rollout = encode_prompts(tokenizer, [TURN], None, "cpu")["input_ids"][0].tolist()
    dpo_config = build_config("dpo", overrides={"eval_fraction": 0.0, "precision": "fp32"})
    trainer = _build_trainer(policy, tokenizer, [CHAT_ROW], dpo_config, tmp_path, False, [])
    dpo = trainer.train_dataset[0]["prompt_ids"]
    _, reward_tokenizer = load_backbone(str(folder), torch.float32)
    pair = tokenize_pairs(reward_tokenizer, [CHAT_ROW], build_config("reward"))[0]
    assert rollout == expected
    assert dpo == expected
    assert pair["chosen_ids"][: len(expected)] == expected
    assert pair["rejected_ids"][: len(expected)] == expected


@pytest.mark.parametrize("name", ["gemma", "llama3"])
def test_generate_stops_at_the_end_of_turn_token(name, family_model):
    """Bug 3: generate stopped on the tokenizer's EOS only and ran on past <end_of_turn> /
    <|eot_id|>."""
    from training.config import build_config
    from training.generate import Sampler, generate_rows

    model, tokenizer = load(family_model(name))
    rain, tea = tokenizer.convert_tokens_to_ids(["rain", "tea"])
    end = tokenizer.convert_tokens_to_ids(FAMILIES[name].end_of_turn)
    ScriptedHead(model.config.vocab_size, [rain, rain, end], then=tea).install(model)
    config = build_config("generate", overrides={"n": 2, "max_new_tokens": 8, "precision": "fp32"})
    rows = next(
        generate_rows(Sampler(model, tokenizer, "m", None), [{"id": "q", "prompt": TURN}], config)
    )
    assert [c["text"] for c in rows[0]["completions"]] == ["rain rain", "rain rain"]


def test_rollout_stops_and_masks_at_the_end_of_turn_and_renders_plain_prompts(
    family_model, monkeypatch
):
    """Bugs 3 and 6 in PPO: a Gemma-like rollout ran past <end_of_turn> (masked and rewarded
    as run-on text), and a plain-string prompt reached the policy as raw text."""
    from training import ppo_rollout

    base, tokenizer = load(family_model("gemma"))
    rain, tea = tokenizer.convert_tokens_to_ids(["rain", "tea"])
    end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    ScriptedHead(base.config.vocab_size, [rain, rain, end], then=tea).install(base)
    model, config = policy_value(base)
    encoded = Capture(monkeypatch, ppo_rollout, "encode_prompts")
    plain = "tell me about tea"
    rollout = ppo_rollout.collect_rollout(
        model, tokenizer, [plain, plain], zero_reward, 0.05, config
    )
    assert encoded.results[0]["input_ids"][0].tolist() == chat_ids(tokenizer, TURN)
    assert rollout.response_ids[0].tolist() == [rain, rain, end]
    assert rollout.mask.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    assert rollout.completions == ["rain rain", "rain rain"]


def test_stop_mask_covers_through_the_first_stop_token_only():
    import torch

    from training.ppo_rollout import stop_mask

    tokens = torch.tensor([[5, 7, 6, 9], [5, 9, 7, 6], [5, 6, 6, 6]])
    assert stop_mask(tokens, [7, 9]).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


@pytest.mark.parametrize(
    ("name", "stops"),
    [
        ("llama3", ["<|end_of_text|>", "<|eot_id|>"]),
        ("gemma", ["<eos>", "<end_of_turn>"]),
        ("qwen25", ["<|im_end|>", "<|endoftext|>"]),
        ("mistral", ["</s>"]),
    ],
)
def test_stop_ids_are_the_union_of_generation_config_eos_and_end_of_turn(name, stops, family_model):
    from training.chat import stop_token_ids

    model, tokenizer = load(family_model(name))
    expected = sorted(tokenizer.convert_tokens_to_ids(stops))
    assert stop_token_ids(tokenizer, model.generation_config) == expected


def test_rollout_samples_from_the_distribution_ppo_scores(family_model):
    """Bug 2: the rollout inherited ``repetition_penalty: 1.05`` from the Qwen-like
    generation_config.json, so tokens were drawn from another distribution than the
    softmax(logits / T) whose log-probs PPO trains on: the policy/old-policy ratio of the
    first minibatch, taken against the sampler, was not 1."""
    import torch

    from training.ppo_rollout import collect_rollout

    base, tokenizer = load(family_model("qwen25"))
    assert base.generation_config.repetition_penalty == 1.05
    model, config = policy_value(base, temperature=0.7, max_new_tokens=8)
    original, seen = model.generate, []

    def spy(**kwargs):
        generation = copy.deepcopy(kwargs.pop("generation_config"))
        generation.output_scores = generation.return_dict_in_generate = True
        out = original(generation_config=generation, **kwargs)
        seen.append(torch.stack(out.scores, dim=1))
        return out.sequences

    model.generate = spy
    torch.manual_seed(0)
    rollout = collect_rollout(model, tokenizer, [TURN, TURN], zero_reward, 0.05, config)
    sampled = torch.log_softmax(seen[0].float(), dim=-1)
    sampled = sampled.gather(2, rollout.response_ids.unsqueeze(-1)).squeeze(-1)
    mask = rollout.mask.bool()
    ratio = torch.exp(rollout.logprobs - sampled)[mask]
    assert mask.sum() >= 4
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-5), ratio


def test_generate_renders_a_plain_prompt_as_one_user_turn(tiny_llama, tmp_path, monkeypatch):
    """Bug 6: plain-string prompts reached chat models as raw text (SmolLM2 then wrote "")."""
    from transformers import AutoTokenizer

    import training
    from training import generate as generate_module

    encoded = Capture(monkeypatch, generate_module, "encode_prompts")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "tell me about tea"}) + "\n")
    training.run(
        "generate",
        model=str(tiny_llama),
        out=tmp_path / "g",
        prompts=prompts,
        config={"n": 2, "max_new_tokens": 3, "precision": "fp32"},
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    assert encoded.results[0]["input_ids"][0].tolist() == chat_ids(tokenizer, TURN)


def test_empty_completions_are_resampled(tiny_llama):
    """Bug 6: an empty completion was written as it came; now its prompt is sampled again."""
    from training.config import build_config
    from training.generate import Sampler, generate_rows

    model, tokenizer = load(tiny_llama)
    rain, eos = tokenizer.convert_tokens_to_ids("rain"), tokenizer.eos_token_id
    ScriptedHead(model.config.vocab_size, [eos, rain, eos], then=eos).install(model)
    config = build_config("generate", overrides={"n": 2, "max_new_tokens": 4, "precision": "fp32"})
    rows = next(
        generate_rows(Sampler(model, tokenizer, "m", None), [{"id": "q", "prompt": TURN}], config)
    )
    assert [c["text"] for c in rows[0]["completions"]] == ["rain", "rain"]


def test_still_empty_completions_are_reported_with_exit_code_3(tiny_llama, tmp_path, capsys):
    """Bug 6: ``generate`` wrote "" completions silently (exit 0)."""
    from training.cli import main

    model, tokenizer = load(tiny_llama)
    silent = tmp_path / "silent"
    eos_only(model, tokenizer.eos_token_id).save_pretrained(silent)
    tokenizer.save_pretrained(silent)
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": "hot", "prompt": "tell me about sun"}, {"id": "joke", "prompt": TURN}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "next.jsonl"
    argv = ["generate", "--model", str(silent), "--prompts", str(prompts), "-n", "2"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--max-new-tokens", "3", "--out", str(out)])
    assert exit_info.value.code == 3
    error = capsys.readouterr().err
    assert "2 prompt(s) still have an empty completion" in error and "hot, joke" in error
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["hot", "joke"]

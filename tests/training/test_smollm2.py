"""End to end on the real SmolLM2-135M-Instruct (`make models`: training/model_wheels.py)."""

import json

import pytest
from conftest import SMOLLM2, marker_rows, write_export

import training
from training.ppo_models import SharedBaseReward

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SMOLLM2 / "config.json").is_file(),
        reason="models/SmolLM2-135M-Instruct is absent (make models)",
    ),
]
TINY = {
    "precision": "fp32",
    "lora_r": 4,
    "lora_alpha": 8,
    "logging_steps": 1,
    "per_device_batch_size": 2,
    "max_length": 96,
}


@pytest.fixture(autouse=True)
def _all_threads():
    import os

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


def test_reward_dpo_ppo_and_generate_on_smollm2(tmp_path, monkeypatch):
    export = write_export(tmp_path / "export", marker_rows(6, pairs_per_prompt=1, chat=True))
    model = str(SMOLLM2)
    rm = training.run(
        "reward", data=export, model=model, out=tmp_path / "rm", config={**TINY, "max_steps": 2}
    )
    tokenizer_config = json.loads((rm.artifact / "tokenizer_config.json").read_text())
    assert tokenizer_config["pad_token"] != tokenizer_config["eos_token"]
    dpo = training.run(
        "dpo", data=export, model=model, out=tmp_path / "dpo", config={**TINY, "max_steps": 2}
    )
    assert "eval_accuracy" in dpo.metrics

    from training import ppo as ppo_module

    built = []
    original = ppo_module._build
    monkeypatch.setattr(ppo_module, "_build", lambda *a: built.append(original(*a)) or built[-1])
    ppo = training.run(
        "ppo",
        data=export,
        model=model,
        out=tmp_path / "ppo",
        reward=rm.out,
        config={
            "max_steps": 1,
            "rollout_batch_size": 2,
            "mini_batch_size": 2,
            "ppo_epochs": 1,
            "max_new_tokens": 8,
            "lora_r": 4,
            "value_lora_r": 4,
            "precision": "fp32",
            "sample_every": 1,
        },
    )
    assert isinstance(built[0].reward_fn, SharedBaseReward)  # one base serves all four roles
    sample = json.loads((ppo.out / "samples.jsonl").read_text().splitlines()[0])["samples"][0]
    assert isinstance(sample["completion"], str) and isinstance(sample["reward"], float)

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "q", "prompt": [{"role": "user", "content": "Hi!"}]}))
    gen = training.run(
        "generate",
        model=model,
        out=tmp_path / "gen",
        prompts=prompts,
        adapter=dpo.out,
        config={"n": 1, "mix_base": True, "max_new_tokens": 8, "precision": "fp32"},
    )
    row = json.loads(gen.artifact.read_text())
    assert sorted(c["model"] for c in row["completions"]) == [model, f"{model}+dpo"]


def test_generate_answers_plain_string_prompts_on_smollm2(tmp_path):
    """Issue 9 bug 6: plain-string prompts reached SmolLM2 as raw text and every completion
    came back "" (it answers the same question through its chat template)."""
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "hot", "prompt": "My house is too hot. What can I do?"},
        {"id": "joke", "prompt": "Tell me a knock-knock joke."},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gen = training.run(
        "generate",
        model=str(SMOLLM2),
        out=tmp_path / "gen",
        prompts=prompts,
        config={"n": 2, "max_new_tokens": 16, "precision": "fp32"},
    )
    texts = [
        c["text"]
        for line in gen.artifact.read_text().splitlines()
        for c in json.loads(line)["completions"]
    ]
    assert len(texts) == 4 and all(t.strip() for t in texts), texts

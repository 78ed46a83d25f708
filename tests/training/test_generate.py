"""Generation into the import format, with and without the base mixed in."""

import json
from collections import Counter

import pytest

import training
from training.generate import COMPLETIONS_FILE, resolve_adapter

PROMPTS = [
    {"id": "a", "prompt": "tell me about tea .", "metadata": {"source": "t"}},
    {
        "id": "b",
        "prompt": [{"role": "user", "content": "tell me about rain"}],
        "completions": [{"id": "x", "text": "ignored", "model": "m"}],
    },
    {"id": "c", "prompt": "tell me about salt ."},
]


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path


@pytest.fixture(scope="module")
def dpo_run(tiny_llama, small_export, tmp_path_factory):
    return training.run(
        "dpo",
        data=small_export,
        model=str(tiny_llama),
        out=tmp_path_factory.mktemp("runs") / "dpo-7",
        config={"max_steps": 2, "precision": "fp32", "lora_r": 4},
    )


def check_import_rows(rows, n, models):
    assert [r["id"] for r in rows] == [p["id"] for p in PROMPTS]
    for row, source in zip(rows, PROMPTS, strict=True):
        assert set(row) == {"id", "prompt", "completions", "metadata"}
        assert row["prompt"] == source["prompt"]
        assert len(row["completions"]) == n
        assert [c["id"] for c in row["completions"]] == [f"c{k}" for k in range(1, n + 1)]
        for completion in row["completions"]:
            assert set(completion) == {"id", "text", "model"}
            assert isinstance(completion["text"], str) and completion["model"] in models
        sampling = row["metadata"]["generation"]["sampling"]
        assert sampling["temperature"] == 0.7 and sampling["max_new_tokens"] == 5
    assert rows[0]["metadata"]["source"] == "t"


def test_generate_from_base_writes_import_jsonl(tiny_llama, prompts_file, tmp_path):
    result = training.run(
        "generate",
        model=str(tiny_llama),
        out=tmp_path / "g",
        prompts=prompts_file,
        config={"n": 3, "max_new_tokens": 5, "batch_size": 2, "precision": "fp32"},
    )
    assert result.artifact == tmp_path / "g" / COMPLETIONS_FILE
    rows = [json.loads(x) for x in result.artifact.read_text().splitlines()]
    check_import_rows(rows, 3, {str(tiny_llama)})
    progress = [json.loads(x) for x in (tmp_path / "g" / "metrics.jsonl").read_text().splitlines()]
    assert [p["prompts_done"] for p in progress] == [2, 3]


def test_mix_mode_shuffles_adapter_and_base_samples(tiny_llama, dpo_run, prompts_file, tmp_path):
    from training.cli import main

    out = tmp_path / "next.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "generate",
                "--model",
                str(tiny_llama),
                "--adapter",
                str(dpo_run.out),
                "--prompts",
                str(prompts_file),
                "-n",
                "2",
                "--max-new-tokens",
                "5",
                "--mix-base",
                "--out",
                str(out),
            ]
        )
    assert exit_info.value.code == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    tuned = f"{tiny_llama}+dpo-7"
    check_import_rows(rows, 4, {str(tiny_llama), tuned})
    for row in rows:
        assert Counter(c["model"] for c in row["completions"]) == {tuned: 2, str(tiny_llama): 2}
    orders = {tuple(c["model"] == tuned for c in row["completions"]) for row in rows}
    assert len(orders) > 1 or len(rows) < 3  # positions are shuffled per prompt
    assert rows[0]["metadata"]["generation"]["adapter"] == tuned


def test_generate_errors(tiny_llama, prompts_file, tmp_path):
    with pytest.raises(ValueError, match="mix_base needs an adapter"):
        training.run(
            "generate",
            model=str(tiny_llama),
            out=tmp_path / "g",
            prompts=prompts_file,
            config={"n": 2, "mix_base": True},
        )
    with pytest.raises(ValueError, match="prompts is required"):
        training.run("generate", model=str(tiny_llama), out=tmp_path / "g")
    with pytest.raises(ValueError, match="adapter_config.json"):
        resolve_adapter(tmp_path)


def test_prompt_format_raw_keeps_plain_text_and_a_bad_value_names_the_field(
    tiny_llama, tmp_path, monkeypatch, capsys
):
    from conftest import Capture
    from transformers import AutoTokenizer

    from training import generate as generate_module
    from training.cli import main

    encoded = Capture(monkeypatch, generate_module, "encode_prompts")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "tell me about tea"}) + "\n")
    argv = ["generate", "--model", str(tiny_llama), "--prompts", str(prompts), "-n", "2"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--max-new-tokens", "3", "--out", str(tmp_path / "o.jsonl"),
              "--prompt-format", "raw"])  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    raw = tokenizer("tell me about tea")["input_ids"]
    assert exit_info.value.code == 0
    assert encoded.results[0]["input_ids"][0].tolist() == raw
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "p.jsonl"), "--prompt-format", "text"])
    assert exit_info.value.code == 2 and "prompt_format" in capsys.readouterr().err

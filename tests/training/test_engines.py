"""Options that need a GPU stack, on CPU: the vLLM engine and 4-bit weights are refused by
name where they cannot run, and the vLLM engine's use of vLLM's API (a recording stand-in of
``vllm.LLM`` / ``SamplingParams`` / ``LoRARequest``: vLLM itself is not installed here; the real
one runs in bench/gpu_check.sh) keeps the transformers engine's semantics."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

import training
from tests.training.conftest import build_tiny_llama, marker_rows, write_export
from training.config import build_config
from training.config_base import ConfigError
from training.generate import generate_to_file
from training.tiny import WORDS

NO_VLLM = importlib.util.find_spec("vllm") is None


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": "p1", "prompt": "tell me a story"}, {"id": "p2", "prompt": "hello there"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.skipif(not NO_VLLM, reason="vllm is installed")
def test_the_vllm_engine_without_vllm_is_refused_by_name(tiny, prompts, tmp_path):
    config = build_config("generate", overrides={"engine": "vllm", "n": 2})
    with pytest.raises(ConfigError, match="pip install 'prefloop\\[vllm\\]'") as exc:
        generate_to_file(str(tiny), prompts, tmp_path / "out.jsonl", config)
    assert exc.value.field == "engine"


def test_4bit_weights_on_cpu_are_refused_by_name(tiny, tmp_path):
    export = write_export(tmp_path / "export", marker_rows(2, chat=True))
    config = {"load_in_4bit": True, "max_steps": 1, "precision": "fp32"}
    with pytest.raises(ConfigError) as exc:
        training.run("dpo", data=export, model=str(tiny), out=tmp_path / "run", config=config)
    assert exc.value.field == "load_in_4bit"
    with pytest.raises(ConfigError, match="LoRA option"):
        build_config("reward", overrides={"full_finetune": True, "load_in_4bit": True})


class Recorder:
    """The parts of vLLM's API the engine uses, recording each call."""

    def __init__(self, words: list[int], stop: int) -> None:
        self.words, self.stop, self.llm_options, self.params, self.calls = words, stop, {}, [], []
        llm_self = self

        class LLM:
            def __init__(self, **options):
                llm_self.llm_options = options

            def generate(self, requests, params, lora_request=None, use_tqdm=True):
                llm_self.calls.append((requests, params, lora_request))
                # each completion: two tokens, a stop id, then a token that must be cut
                done = [[*llm_self.words, llm_self.stop, llm_self.words[0]]] * params["n"]
                outs = [types.SimpleNamespace(token_ids=ids) for ids in done]
                return [types.SimpleNamespace(outputs=outs) for _ in requests]

        def sampling_params(**kwargs):
            self.params.append(kwargs)
            return kwargs

        request = types.ModuleType("vllm.lora.request")
        request.LoRARequest = lambda name, number, path: ("lora", name, number, path)
        self.modules = {
            "vllm": types.SimpleNamespace(LLM=LLM, SamplingParams=sampling_params),
            "vllm.lora": types.ModuleType("vllm.lora"),
            "vllm.lora.request": request,
        }


def test_the_vllm_engine_samples_with_the_same_semantics(tiny, prompts, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    adapter = tmp_path / "run" / "adapter"
    shutil.copytree(tiny, adapter)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 4}))
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    words = tokenizer(" ".join(WORDS[:2]), add_special_tokens=False)["input_ids"]
    fake = Recorder(words, stop=tokenizer.eos_token_id)
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    overrides = {"engine": "vllm", "n": 2, "mix_base": True, "top_k": 0, "seed": 3}
    config = build_config("generate", overrides=overrides)
    out = tmp_path / "out.jsonl"
    assert generate_to_file(str(tiny), prompts, out, config, adapter=tmp_path / "run") == 2
    options = fake.llm_options
    assert (options["enable_lora"], options["max_lora_rank"], options["model"]) == (
        True,
        8,
        str(tiny),
    )
    params = fake.params[0]
    assert (params["top_k"], params["min_p"], params["max_tokens"]) == (-1, 0.0, 128)
    assert tokenizer.eos_token_id in params["stop_token_ids"]
    assert [c[2] is None for c in fake.calls] == [False, True]  # adapter, then the base
    assert fake.calls[0][2] == ("lora", "adapter", 1, str(adapter))
    assert len({p["seed"] for p in fake.params}) == len(fake.params)  # a fresh seed per call
    from training.chat import prompt_ids

    assert fake.calls[0][0][0]["prompt_token_ids"] == prompt_ids(tokenizer, "tell me a story")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = tokenizer.decode(words, skip_special_tokens=True).strip()
    assert expected == " ".join(WORDS[:2])
    assert {c["text"] for row in rows for c in row["completions"]} == {expected}
    models = sorted(c["model"] for c in rows[0]["completions"])
    assert models == [str(tiny)] * 2 + [f"{tiny}+run"] * 2
    assert rows[0]["metadata"]["generation"]["sampling"]["engine"] == "vllm"

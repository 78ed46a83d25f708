"""Sample completions into the import format (SPEC §3), for the next labeling round.

Input: a JSONL of ``{"id", "prompt"}`` rows (SPEC §3 rows too; their completions are ignored,
their metadata kept). Output rows::

    {"id": ..., "prompt": ..., "completions": [{"id": "c1", "text": ..., "model": ...}, ...],
     "metadata": {..., "generation": {"base_model", "adapter", "sampling": {...}}}}

``model`` is the base model's name, or ``"<base>+<adapter name>"`` for the adapter's samples.
With ``mix_base`` each prompt gets n completions from the adapter AND n from the base (the
adapter switched off: one copy of the weights), shuffled so position says nothing about the
source. Completion ids (``c1``..``cK``) are assigned after shuffling.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import GenerateRunConfig
from training.data import encode_prompts, load_prompts
from training.runtime import ADAPTER_DIR, Callbacks, Cancelled, RunRecorder, RunResult

COMPLETIONS_FILE = "completions.jsonl"
RESAMPLES = 3  # tries to replace an empty completion before reporting the prompt


class EmptyCompletionsError(ValueError):
    """Some prompts still had empty completions after resampling; the file was written."""

    def __init__(self, prompt_ids: list[Any], out_file: Path) -> None:
        self.prompt_ids = prompt_ids
        shown = ", ".join(map(str, prompt_ids[:20])) + (" ..." if len(prompt_ids) > 20 else "")
        super().__init__(
            f"{len(prompt_ids)} prompt(s) still have an empty completion after {RESAMPLES} "
            f"resamples (prompt ids: {shown}); {out_file} was written with them empty. Check "
            "prompt_format (a chat model needs its chat template) and max_new_tokens"
        )


@dataclass
class Sampler:
    """A base model, optionally with a LoRA adapter, and the names recorded for each."""

    model: Any
    tokenizer: Any
    base_name: str
    adapter_name: str | None  # "<base>+<adapter>" when an adapter is loaded
    vllm: Any = None  # engine 'vllm': a training.generate_vllm.VLLMEngine (model is None)
    calls: int = 0  # sampling calls so far (vLLM: a fresh seed for each, resamples included)


def resolve_adapter(path: Path) -> Path:
    """Accept a run folder (holding ``adapter/``) or the adapter folder itself."""
    path = Path(path)
    if (path / ADAPTER_DIR / "adapter_config.json").is_file():
        return path / ADAPTER_DIR
    if (path / "adapter_config.json").is_file():
        return path
    raise ValueError(f"adapter {path} holds no adapter_config.json (nor {ADAPTER_DIR}/)")


def load_sampler(model: str, adapter: Path | None, config: GenerateRunConfig) -> Sampler:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.runtime import resolve_precision

    dtype, _ = resolve_precision(config.precision)
    adapter_dir = resolve_adapter(adapter) if adapter is not None else None
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir or model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    name = None
    if adapter_dir is not None:
        label = adapter_dir.parent.name if adapter_dir.name == ADAPTER_DIR else adapter_dir.name
        name = f"{model}+{label}"
    if config.engine == "vllm":
        from training.generate_vllm import load_vllm

        return Sampler(
            None, tokenizer, model, name, load_vllm(model, adapter_dir, tokenizer, config)
        )
    network = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        network = PeftModel.from_pretrained(network, adapter_dir)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Sampler(network.to(device).eval(), tokenizer, model, name)


def sampling_settings(config: GenerateRunConfig) -> dict[str, Any]:
    return {
        "n": config.n,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "top_k": config.top_k,
        "repetition_penalty": config.repetition_penalty,
        "max_new_tokens": config.max_new_tokens,
        "seed": config.seed,
        "mix_base": config.mix_base,
        "prompt_format": config.prompt_format,
        "engine": config.engine,
    }


def _sample_texts(
    sampler: Sampler, prompts: list[Any], config: GenerateRunConfig, use_adapter: bool
) -> list[list[str]]:
    """n texts per prompt from the adapter (or from the base when ``use_adapter`` is false),
    each cut at its first stop token (EOS, generation config EOS ids, end-of-turn)."""
    import contextlib

    import torch

    from training.chat import base_of, own_generation_defaults, sampling_config, stop_token_ids
    from training.ppo_rollout import stop_mask

    sampler.calls += 1
    if sampler.vllm is not None:
        from training.generate_vllm import sample_vllm

        seed = config.seed + sampler.calls
        return sample_vllm(sampler.vllm, sampler.tokenizer, prompts, config, use_adapter, seed)
    tok = sampler.tokenizer
    batch = encode_prompts(tok, prompts, None, sampler.model.device, config.prompt_format)
    stops = stop_token_ids(tok, base_of(sampler.model).generation_config)
    generation = sampling_config(
        stops,
        tok.pad_token_id,
        config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        repetition_penalty=config.repetition_penalty,
        num_return_sequences=config.n,
    )
    switch_off = sampler.adapter_name is not None and not use_adapter
    context = sampler.model.disable_adapter() if switch_off else contextlib.nullcontext()
    with torch.no_grad(), context, own_generation_defaults(sampler.model):
        out = sampler.model.generate(**batch, generation_config=generation)
    response = out[:, batch["input_ids"].shape[1] :]
    mask = stop_mask(response, stops).bool()
    texts = [
        tok.decode(r[m], skip_special_tokens=True).strip()
        for r, m in zip(response, mask, strict=True)
    ]
    return [texts[i * config.n : (i + 1) * config.n] for i in range(len(prompts))]


def _fill_empty(
    sampler: Sampler,
    prompts: list[Any],
    samples: list[list[str]],
    config: GenerateRunConfig,
    use_adapter: bool,
) -> None:
    """Resample (up to ``RESAMPLES`` times) the prompts that got an empty completion and put
    non-empty texts in the empty slots, in place."""
    for _ in range(RESAMPLES):
        todo = [i for i, texts in enumerate(samples) if "" in texts]
        if not todo:
            return
        again = _sample_texts(sampler, [prompts[i] for i in todo], config, use_adapter)
        for i, fresh in zip(todo, again, strict=True):
            spare = [t for t in fresh if t]
            samples[i] = [t or (spare.pop() if spare else "") for t in samples[i]]


def generate_rows(
    sampler: Sampler, prompts: list[dict[str, Any]], config: GenerateRunConfig
) -> Iterator[list[dict[str, Any]]]:
    """Yield import rows batch by batch."""
    if config.mix_base and sampler.adapter_name is None:
        raise ValueError("mix_base needs an adapter: it mixes the adapter's and the base's samples")
    from transformers import set_seed

    set_seed(config.seed)
    rng = random.Random(config.seed)
    info = {
        "base_model": sampler.base_name,
        "adapter": sampler.adapter_name,
        "sampling": sampling_settings(config),
    }
    for start in range(0, len(prompts), config.batch_size):
        chunk = prompts[start : start + config.batch_size]
        texts = [p["prompt"] for p in chunk]
        own = sampler.adapter_name or sampler.base_name
        names = [(own, True)] + ([(sampler.base_name, False)] if config.mix_base else [])
        sources = []
        for name, use_adapter in names:
            samples = _sample_texts(sampler, texts, config, use_adapter)
            _fill_empty(sampler, texts, samples, config, use_adapter)
            sources.append((name, samples))
        rows = []
        for i, prompt in enumerate(chunk):
            pool = [(name, text) for name, samples in sources for text in samples[i]]
            rng.shuffle(pool)
            completions = [
                {"id": f"c{k}", "text": text, "model": name}
                for k, (name, text) in enumerate(pool, start=1)
            ]
            metadata = {**(prompt.get("metadata") or {}), "generation": info}
            rows.append(
                {
                    "id": prompt["id"],
                    "prompt": prompt["prompt"],
                    "completions": completions,
                    "metadata": metadata,
                }
            )
        yield rows


def generate_to_file(
    model: str,
    prompts_file: Path,
    out_file: Path,
    config: GenerateRunConfig,
    adapter: Path | None = None,
    recorder: RunRecorder | None = None,
) -> int:
    """Write the import JSONL; return the number of prompts. With a recorder, log progress
    after each batch and stop (raising Cancelled) when asked. Raises EmptyCompletionsError,
    after writing the whole file, when some completion stayed empty after resampling."""
    prompts = load_prompts(prompts_file)
    sampler = load_sampler(model, adapter, config)
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    done, empty = 0, []
    with Path(out_file).open("w", encoding="utf-8") as handle:
        for step, rows in enumerate(generate_rows(sampler, prompts, config), start=1):
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                if any(not c["text"] for c in row["completions"]):
                    empty.append(row["id"])
            done += len(rows)
            progress = {"prompts_done": done, "prompts_total": len(prompts)}
            if recorder is not None and recorder.log(step, progress):
                raise Cancelled(f"generation stopped after {done} prompts on request")
    if empty:
        raise EmptyCompletionsError(empty, Path(out_file))
    return done


def run_generate(
    model: str,
    prompts_file: Path,
    out: Path,
    config: GenerateRunConfig,
    adapter: Path | None = None,
    callbacks: Callbacks | None = None,
) -> RunResult:
    """A generation run: ``out/completions.jsonl`` plus the usual run files."""
    recorder = RunRecorder(
        out,
        "generate",
        model,
        config.to_dict(),
        callbacks,
        data={"prompts": str(prompts_file), "adapter": str(adapter) if adapter else None},
    )
    target = Path(out) / COMPLETIONS_FILE
    done = generate_to_file(model, prompts_file, target, config, adapter, recorder)
    return recorder.finish({"prompts": float(done)}, done, artifact=target)

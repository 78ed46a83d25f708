"""Throughput check of the training kinds on SmolLM2 (run by ``bench/gpu_check.sh``).

Reward, DPO and PPO steps with LoRA (bf16 on a GPU) through ``training.run``, then the same DPO
steps through a plain TRL script, printing tokens/s and peak GPU memory for each and the
ratio ours / plain TRL. The data is a synthetic chat export made here, so nothing but the
repo and ``models/`` is needed::

    python bench/train_smoke.py            # GPU: bf16, real step counts
    python bench/train_smoke.py --cpu      # CPU smoke of the same path: fp32, 2 steps each
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from loop_stats import pair_row, write_export  # noqa: E402 (shared bench export rows)

TOPICS = [
    "tea",
    "rain",
    "bread",
    "the moon",
    "rivers",
    "cats",
    "bicycles",
    "winter",
    "salt",
    "maps",
    "bees",
    "clocks",
]


def synthetic_export(folder: Path, n_prompts: int) -> Path:
    """Chat pairs where the polite, longer answer is chosen."""
    rng = random.Random(0)
    rows = []
    for i in range(n_prompts):
        topic = rng.choice(TOPICS)
        prompt = [{"role": "user", "content": f"Can you tell me something about {topic}?"}]
        good = (
            f"Of course! Here is something about {topic}: people have studied {topic} "
            f"for a long time, and there is a lot to learn. " * rng.randint(2, 5)
        )
        bad = f"No. {topic} is boring."
        chosen = [{"role": "assistant", "content": good}]
        rows.append(pair_row(prompt, chosen, [{"role": "assistant", "content": bad}], f"p{i}"))
    return write_export(rows, folder, "smoke")


def _peak_gb() -> float:
    import torch

    if not torch.cuda.is_available():
        return 0.0
    peak = torch.cuda.max_memory_allocated() / 1024**3
    torch.cuda.reset_peak_memory_stats()
    return round(peak, 2)


def _metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def trl_tokens_per_second(metrics: list[dict[str, Any]], wall: float) -> float:
    tokens = max((m.get("num_tokens") or 0) for m in metrics)
    runtime = next((m["train_runtime"] for m in metrics if "train_runtime" in m), wall)
    return tokens / max(runtime, 1e-9)


def run_kind(
    kind: str, export: Path, model: str, tmp: Path, config: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    import training

    started = time.monotonic()
    result = training.run(kind, data=export, model=model, out=tmp / kind, config=config, **kwargs)
    wall = time.monotonic() - started
    metrics = _metrics(result.out)
    if kind == "ppo":
        per_step = config["rollout_batch_size"] * _mean(metrics, "response_length")
        speed = per_step * result.steps / wall  # generated tokens per second (whole step)
    else:
        speed = trl_tokens_per_second(metrics, wall)
    return {
        "kind": kind,
        "steps": result.steps,
        "wall_s": round(wall, 1),
        "tokens_per_s": round(speed, 1),
        "peak_gpu_gb": _peak_gb(),
        "out": result.out,
    }


def _mean(metrics: list[dict[str, Any]], key: str) -> float:
    values = [m[key] for m in metrics if m.get(key) is not None]
    return sum(values) / max(len(values), 1)


def plain_trl_dpo(
    export: Path, model: str, tmp: Path, steps: int, batch: int, length: int, bf16: bool
) -> dict[str, Any]:
    """The same DPO steps written the way TRL's docs show, for the throughput ratio."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    rows = [json.loads(x) for x in (export / "pairs.jsonl").read_text().splitlines()]
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(model)
    policy = AutoModelForCausalLM.from_pretrained(
        model, dtype=torch.bfloat16 if bf16 else torch.float32
    )
    args = DPOConfig(
        output_dir=str(tmp / "plain"),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=5e-5,
        logging_steps=1,
        bf16=bf16,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        max_length=length,
        disable_tqdm=True,
    )
    trainer = DPOTrainer(
        model=policy,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    started = time.monotonic()
    trainer.train()
    wall = time.monotonic() - started
    speed = trl_tokens_per_second(trainer.state.log_history, wall)
    return {
        "kind": "dpo (plain TRL)",
        "steps": steps,
        "wall_s": round(wall, 1),
        "tokens_per_s": round(speed, 1),
        "peak_gpu_gb": _peak_gb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="CPU smoke: fp32, 2 steps each")
    parser.add_argument("--model", default=str(REPO / "models" / "SmolLM2-135M-Instruct"))
    args = parser.parse_args()
    import torch

    if not args.cpu and not torch.cuda.is_available():
        sys.exit("no CUDA device: use --cpu for the smoke run")
    steps, batch, length = (2, 2, 128) if args.cpu else (30, 8, 512)
    common = {
        "precision": "fp32" if args.cpu else "bf16",
        "lora_r": 16,
        "lora_alpha": 32,
        "max_steps": steps,
        "logging_steps": 1,
    }
    train = {
        **common,
        "per_device_batch_size": batch,
        "max_length": length,
        "eval_fraction": 0.1,
        "learning_rate": 5e-5,
    }
    ppo = {
        **common,
        "rollout_batch_size": batch,
        "mini_batch_size": batch // 2,
        "ppo_epochs": 2,
        "max_new_tokens": 8 if args.cpu else 64,
        "sample_every": 0,
    }
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        export = synthetic_export(tmp / "export", n_prompts=20 if args.cpu else 480)
        reward = run_kind("reward", export, args.model, tmp, train)
        results += [
            reward,
            run_kind("dpo", export, args.model, tmp, train),
            run_kind("ppo", export, args.model, tmp, ppo, reward=reward["out"]),
            plain_trl_dpo(export, args.model, tmp, steps, batch, length, not args.cpu),
        ]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"\ndevice: {device}")
    print(f"{'kind':<18}{'steps':>6}{'wall s':>9}{'tokens/s':>11}{'peak GPU GB':>13}")
    for r in results:
        print(
            f"{r['kind']:<18}{r['steps']:>6}{r['wall_s']:>9}{r['tokens_per_s']:>11}"
            f"{r['peak_gpu_gb']:>13}"
        )
    ours, plain = results[1]["tokens_per_s"], results[3]["tokens_per_s"]
    print(f"DPO tokens/s ours / plain TRL: {ours / max(plain, 1e-9):.2f}")
    print("(ppo tokens/s counts generated tokens over the whole step: rollout + update)")


if __name__ == "__main__":
    main()

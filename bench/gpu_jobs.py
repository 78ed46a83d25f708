"""GPU check of runs as child jobs (run by ``bench/gpu_check.sh``), on SmolLM2:

1. a DPO run through the worker's path without the database: ``training.jobs.write_job`` and
   ``training.launch.ChildJob`` (``accelerate launch`` of ``python -m training job``), DDP on
   every GPU (two when there are two or more; gloo processes with ``--cpu``), printing wall
   time, tokens/s, world size, backend and whether the ranks' adapters are byte-identical;
2. the memory plan (``training.memory``) against the job's ``torch.cuda.max_memory_allocated``
   (rank 0): the ratio, target 0.75-1.25;
3. generation tokens/s with the transformers engine and with vLLM (skipped when vllm is not
   installed), same prompts and sampling settings.

    python bench/gpu_jobs.py --model models/SmolLM2-135M-Instruct [--cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from train_smoke import synthetic_export  # noqa: E402 (the smoke's export)

from training.devices import visible_gpus  # noqa: E402
from training.jobs import LOG_FILE, read_ranks, read_result, write_job  # noqa: E402
from training.launch import ChildJob, launch_argv, launch_env  # noqa: E402
from training.memory import GB, estimate  # noqa: E402
from training.queue import ClaimedRun, RunPaths  # noqa: E402

GPU_DPO = {"max_steps": 20, "logging_steps": 5, "eval_fraction": 0.0, "precision": "bf16"}
GPU_DPO |= {"per_device_batch_size": 8, "max_length": 512, "lora_dropout": 0.0}
CPU_DPO = {"max_steps": 2, "logging_steps": 1, "eval_fraction": 0.0, "precision": "fp32"}
CPU_DPO |= {"per_device_batch_size": 2, "max_length": 128, "lora_r": 4, "lora_alpha": 8}


def worker_path_dpo(model: str, root: Path, cuda: bool) -> dict[str, Any]:
    """One DPO run launched exactly as the worker launches it."""
    paths = RunPaths(root)
    synthetic_export(paths.export_dir(1), 64)
    config = GPU_DPO if cuda else CPU_DPO
    processes = min(2, len(visible_gpus())) if cuda else 2
    run = ClaimedRun(1, "dpo", config, 1, model, None, 1, "bench")
    argv = launch_argv(write_job(paths, run), processes, "ddp", cuda)
    out = paths.run_dir(1)
    job = ChildJob(argv, {**launch_env(cuda), "PYTHONPATH": str(REPO)}, out / LOG_FILE)
    started = time.monotonic()
    job.start()
    while job.poll() is None:
        time.sleep(0.5)
    wall = time.monotonic() - started
    job.reap()
    if job.process.returncode != 0:
        tail = (out / LOG_FILE).read_text(errors="replace").splitlines()[-30:]
        raise SystemExit("worker-path DPO failed:\n" + "\n".join(tail))
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    tokens = max((m.get("num_tokens") or 0 for m in metrics), default=0)
    return {
        "processes": processes,
        "wall": wall,
        "tokens": tokens,
        "ranks": read_ranks(out),
        "result": read_result(out),
        "peak": json.loads((out / "result.json").read_text()).get("peak_gpu_memory_bytes"),
        "config": config,
    }


def report_dpo(found: dict[str, Any], model: str) -> None:
    ranks = found["ranks"]
    same = len({r["sha256"] for r in ranks}) == 1
    backend = ranks[0]["backend"] if ranks else "?"
    print(
        f"worker-path DPO: {found['processes']} process(es), backend {backend}, "
        f"{found['result'].steps} steps in {found['wall']:.1f} s (launch included), "
        f"{found['tokens'] / found['wall']:.0f} tokens/s, adapters identical across ranks: {same}"
    )
    model_config = json.loads((Path(model) / "config.json").read_text())
    plan = estimate(model_config, "dpo", found["config"], found["processes"])
    if found["peak"]:
        ratio = plan.total / found["peak"]
        verdict = "within" if 0.75 <= ratio <= 1.25 else "OUTSIDE"
        print(
            f"memory plan {plan.total / GB:.2f} GB vs max_memory_allocated "
            f"{found['peak'] / GB:.2f} GB (rank 0): ratio {ratio:.2f}, {verdict} +-25%"
        )
        print("  plan parts (GB): " + json.dumps(plan.to_dict()["parts_gb"]))
    else:
        print(f"memory plan {plan.total / GB:.2f} GB (no CUDA: nothing measured)")


def generation_speed(model: str, root: Path, cuda: bool) -> None:
    """Tokens/s of both engines on the same prompts and settings."""
    import importlib.util

    from transformers import AutoTokenizer

    from training.config import build_config
    from training.generate import generate_to_file

    prompts = root / "prompts.jsonl"
    rows = [{"id": f"p{i}", "prompt": f"Write a short note about topic {i}."} for i in range(32)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokenizer = AutoTokenizer.from_pretrained(model)
    engines = ["transformers"] + (["vllm"] if importlib.util.find_spec("vllm") else [])
    speeds = {}
    for engine in engines:
        overrides = {"engine": engine, "n": 4, "batch_size": 32 if cuda else 4}
        overrides |= {
            "max_new_tokens": 128 if cuda else 16,
            "precision": "bf16" if cuda else "fp32",
        }
        config = build_config("generate", overrides=overrides)
        out = root / f"gen-{engine}.jsonl"
        started = time.monotonic()
        generate_to_file(model, prompts, out, config)
        wall = time.monotonic() - started
        texts = [
            c["text"]
            for line in out.read_text().splitlines()
            for c in json.loads(line)["completions"]
        ]
        tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        speeds[engine] = tokens / wall
        rate = f"{speeds[engine]:.0f} tokens/s"
        print(f"generate ({engine}): {tokens} tokens in {wall:.1f} s = {rate} (load included)")
    if "vllm" in speeds:
        print(f"vllm / transformers tokens/s: {speeds['vllm'] / speeds['transformers']:.2f}")
    else:
        print("generate (vllm): skipped, vllm not installed (pip install 'prefloop[vllm]')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models" / "SmolLM2-135M-Instruct"))
    parser.add_argument("--cpu", action="store_true", help="CPU smoke: two gloo processes")
    args = parser.parse_args()
    cuda = not args.cpu and bool(visible_gpus())
    with tempfile.TemporaryDirectory(prefix="prefloop-gpu-jobs-") as tmp:
        report_dpo(worker_path_dpo(args.model, Path(tmp), cuda), args.model)
        generation_speed(args.model, Path(tmp), cuda)


if __name__ == "__main__":
    main()

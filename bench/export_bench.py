"""Export throughput: ~1M pairs of synthetic prompts through pair_lines into a file.

Each prompt has K completions (default 4) ranked by J labelers (default 3), texts of
about 500 characters drawn from a seeded pool. Prints pairs/s (wall and CPU time)
for the export's hot path ``pair_lines`` and, on a sample, for the dict path
``serialize_rows(pair_rows(...))``, plus the process's peak memory.

    .venv/bin/python bench/export_bench.py [--pairs N] [--completions K] [--strategy S]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain.export_filters import ExportFilters  # noqa: E402
from app.domain.jsonl import serialize_rows  # noqa: E402
from app.domain.pairs import STRATEGIES, JudgmentData, PromptData, pair_lines, pair_rows  # noqa: E402

WORDS = ["the", "a", "fan", "window", "night", "heat", "cool", "air", "open", "room", "ice"]


def text_pool(size: int, chars: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=chars // 5))[:chars] for _ in range(size)]


def synthetic_prompts(
    n_prompts: int, completions: int, judgments: int, chars: int, seed: int
) -> list[PromptData]:
    """Seeded prompts; each labeler perturbs a hidden order (swaps, ties, reject_all)."""
    rng = random.Random(seed)
    pool = text_pool(2000, chars, rng)
    ids = [f"c{i}" for i in range(completions)]
    prompts = []
    for p in range(n_prompts):
        truth = ids[:]
        rng.shuffle(truth)
        votes = []
        for j in range(judgments):
            order = truth[:]
            if rng.random() < 0.3:
                s = rng.randrange(completions - 1)
                order[s], order[s + 1] = order[s + 1], order[s]
            tiers = [[cid] for cid in order]
            if rng.random() < 0.1:
                tiers = [tiers[0] + tiers[1], *tiers[2:]]
            reject = rng.random() < 0.02
            votes.append(JudgmentData(f"l{j}", None if reject else tiers, reject))
        texts = {cid: rng.choice(pool) for cid in ids}
        prompts.append(PromptData(f"p{p:07d}", rng.choice(pool)[:200], texts, None, votes))
    return prompts


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--completions", type=int, default=4)
    parser.add_argument("--judgments", type=int, default=3)
    parser.add_argument("--chars", type=int, default=500)
    parser.add_argument("--strategy", choices=STRATEGIES, default="consensus")
    parser.add_argument("--ties", choices=("drop", "keep"), default="drop")
    args = parser.parse_args()
    filters = ExportFilters(ties=args.ties)
    sample = synthetic_prompts(500, args.completions, args.judgments, args.chars, seed=1)
    per_prompt = sum(len(pair_rows(p, args.strategy, filters)) for p in sample) / len(sample)
    n_prompts = int(args.pairs / per_prompt) + 1
    prompts = synthetic_prompts(n_prompts, args.completions, args.judgments, args.chars, seed=0)
    rss_before = peak_rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.jsonl"
        wall, cpu = time.perf_counter(), time.process_time()
        with path.open("wb") as out:
            for prompt in prompts:
                out.write(pair_lines(prompt, args.strategy, filters))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with path.open("rb") as written:
            lines = sum(1 for _ in written)
        size = path.stat().st_size
    print(
        f"{n_prompts} prompts x {args.completions} completions x {args.judgments} judgments, "
        f"strategy {args.strategy}, ties {args.ties}"
    )
    print(
        f"pair_lines: {lines} pairs, {size / 2**20:.0f} MiB in {wall:.2f} s wall, "
        f"{cpu:.2f} s CPU: {lines / wall:,.0f} pairs/s wall, {lines / cpu:,.0f} pairs/s CPU"
    )
    subset = prompts[: max(1, len(prompts) // 10)]
    wall, cpu = time.perf_counter(), time.process_time()
    rows = sum(
        len(serialize_rows(pair_rows(p, args.strategy, filters)).splitlines()) for p in subset
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"serialize_rows(pair_rows()) on {len(subset)} prompts: {rows / wall:,.0f} pairs/s wall, "
        f"{rows / cpu:,.0f} pairs/s CPU"
    )
    print(f"peak RSS {peak_rss_mib():.0f} MiB (after generating the prompts: {rss_before:.0f} MiB)")


if __name__ == "__main__":
    main()

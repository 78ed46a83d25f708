"""Agreement figures at scale: 100k prompts x 3 judgments (synthetic, seeded).

Times building the OutcomeTable from records, the project figures, a 200-resample
bootstrap and the per-labeler figures, then Krippendorff's alpha of the same units
through the `krippendorff` package, and prints both alphas and the time ratio.

    .venv/bin/python bench/agreement_bench.py [--prompts N] [--resamples B]

The agreement API end to end from the database (query, load, figures, bootstrap,
labelers, with PostgreSQL's CPU and a same-run COPY reference) is
``bench/agreement_db_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import krippendorff
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain.figures import bootstrap_ci, project_figures  # noqa: E402
from app.domain.labeler_figures import labeler_figures  # noqa: E402
from app.domain.outcome_columns import JudgmentColumns, table_from_columns  # noqa: E402
from app.domain.outcomes import JudgmentRecord, OutcomeTable  # noqa: E402

IDS = ("a", "b", "c", "d")


def synthetic_records(
    prompts: int, judgments: int, labelers: int, seed: int
) -> list[JudgmentRecord]:
    """Each prompt has a hidden true order; each labeler swaps neighbours or ties some."""
    rng = np.random.default_rng(seed)
    truths = np.argsort(rng.random((prompts, len(IDS))), axis=1)
    noise = rng.random((prompts, judgments, 3))
    who = np.argsort(rng.random((prompts, labelers)), axis=1)[:, :judgments]
    records = []
    for p in range(prompts):
        prompt_id = f"p{p:06d}"
        for j in range(judgments):
            order = [IDS[i] for i in truths[p]]
            if noise[p, j, 0] < 0.35:
                s = int(noise[p, j, 1] * 3)
                order[s], order[s + 1] = order[s + 1], order[s]
            tiers = [[cid] for cid in order]
            if noise[p, j, 2] < 0.2:
                tiers = [tiers[0] + tiers[1], *tiers[2:]]
            records.append(
                JudgmentRecord(f"labeler{who[p, j]:02d}", prompt_id, tiers, order, 30_000)
            )
    return records


def columns(records: list[JudgmentRecord]) -> JudgmentColumns:
    """The records as the agreement query returns them: grouped by prompt, JSON texts."""
    ordered = sorted(records, key=lambda r: r.prompt_id)
    texts: dict[int, str] = {}

    def dumps(value: object) -> str | None:
        if value is None:
            return None
        key = id(value)
        if key not in texts:
            texts[key] = json.dumps(value)
        return texts[key]

    return JudgmentColumns(
        [r.prompt_id for r in ordered],
        [r.labeler for r in ordered],
        [dumps(r.tiers) for r in ordered],
        [r.tiers is None for r in ordered],
        [dumps(r.shown_order) for r in ordered],
        [r.duration_ms for r in ordered],
        [dumps(r.gold) for r in ordered],
    )


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run fn once; print wall and CPU seconds (CPU time is steadier on a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<42} {wall:8.3f} s wall {cpu:8.3f} s CPU")
    return result, cpu


def reliability_matrix(table: OutcomeTable) -> np.ndarray:
    """coders x units matrix for the krippendorff package (coder = judgment slot)."""
    unit, _, value = table.entries
    order = np.argsort(unit, kind="stable")
    unit, value = unit[order], value[order]
    first = np.searchsorted(unit, unit)
    slot = np.arange(len(unit)) - first
    matrix = np.full((slot.max() + 1, table.n_units), np.nan)
    matrix[slot, unit] = value
    return matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--judgments", type=int, default=3)
    parser.add_argument("--labelers", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    records = synthetic_records(args.prompts, args.judgments, args.labelers, seed=0)
    print(f"{args.prompts} prompts x {args.judgments} judgments, {len(IDS)} completions each")
    table, t_build = timed("OutcomeTable.from_records", OutcomeTable.from_records, records)
    _, t_columns = timed(
        "table_from_columns (same judgments)", table_from_columns, columns(records)
    )
    print(f"CPU: from_records / table_from_columns = {t_build / t_columns:.1f}")
    figures, t_project = timed("project_figures", project_figures, table)
    _, t_boot = timed(
        f"bootstrap_ci ({args.resamples} resamples)", bootstrap_ci, table, args.resamples
    )
    _, t_labelers = timed("labeler_figures", labeler_figures, table)
    matrix, _ = timed("reliability matrix for krippendorff", reliability_matrix, table)
    alpha_nominal, t_pkg = timed(
        "krippendorff.alpha (nominal)",
        krippendorff.alpha,
        reliability_data=matrix,
        level_of_measurement="nominal",
        value_domain=[-1, 0, 1],
    )
    alpha_interval, _ = timed(
        "krippendorff.alpha (interval)",
        krippendorff.alpha,
        reliability_data=matrix,
        level_of_measurement="interval",
    )
    print(f"alpha_nominal: ours {figures['alpha_nominal']:.10f}  krippendorff {alpha_nominal:.10f}")
    print(
        f"alpha_interval: ours {figures['alpha_interval']:.10f}  krippendorff {alpha_interval:.10f}"
    )
    print(
        f"pairwise_agreement {figures['pairwise_agreement']:.4f}  "
        f"mean_kendall_w {figures['mean_kendall_w']:.4f}"
    )
    print(
        f"CPU: project_figures (4 figures) {t_project:.3f} s vs krippendorff.alpha (one "
        f"alpha) {t_pkg:.3f} s: ratio {t_pkg / t_project:.2f}"
    )
    print(
        f"CPU: table + project figures + bootstrap {t_build + t_project + t_boot:.3f} s; "
        f"+ labeler figures: {t_build + t_project + t_boot + t_labelers:.3f} s"
    )


if __name__ == "__main__":
    main()

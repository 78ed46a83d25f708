"""Model against model from labeled rankings: win rates and Bradley–Terry scores with
bootstrap 95% intervals. Pure (numpy + the domain's Bradley–Terry fit), no SQL.

Every ranking judgment compares each completion of one model with each completion of another
model of the same prompt: above = a win, same tier = a tie (half a win each way), below = a
loss. Intervals resample prompts with replacement (a prompt's comparisons stay together) and
take percentiles; the resampling is seeded, so the same data give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.domain.consensus import bradley_terry_strengths

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class RankedPrompt:
    """One prompt's completions (id -> model) and the rankings (tiers, best first) it got."""

    models: Mapping[str, str]
    rankings: Sequence[Sequence[Sequence[str]]]


def outcome_counts(prompts: Iterable[RankedPrompt], models: Sequence[str]) -> np.ndarray:
    """``counts[p, 0, i, j]``: wins of model i over model j on prompt p; ``counts[p, 1, i, j]``:
    ties between them (counted once each way)."""
    index = {m: k for k, m in enumerate(models)}
    blocks = []
    for prompt in prompts:
        block = np.zeros((2, len(models), len(models)))
        for tiers in prompt.rankings:
            level = {cid: t for t, tier in enumerate(tiers) for cid in tier}
            for a, ta in level.items():
                for b, tb in level.items():
                    ma, mb = prompt.models.get(a), prompt.models.get(b)
                    if ma is None or mb is None or ma == mb or ta > tb:
                        continue
                    block[0 if ta < tb else 1, index[ma], index[mb]] += 1
        blocks.append(block)
    return np.array(blocks).reshape(len(blocks), 2, len(models), len(models))


def _scores(wins: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Bradley–Terry log-strengths, centred on their mean (ties are half a win each way)."""
    strengths = bradley_terry_strengths((wins + 0.5 * ties).tolist())
    logs = np.log(np.array(strengths))
    return logs - logs.mean()


def _interval(values: list[float], level: float) -> list[float] | None:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) * 2 <= len(values):
        return None
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]


def _win_rate(wins: np.ndarray, ties: np.ndarray, a: int, b: int) -> float:
    total = wins[a, b] + wins[b, a] + ties[a, b]
    return float((wins[a, b] + 0.5 * ties[a, b]) / total) if total else math.nan


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compare(
    counts: np.ndarray,
    models: Sequence[str],
    focus: tuple[str, str] | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """Bradley–Terry scores of every model and, for ``focus = (a, b)``, a's record against b:
    wins, losses, ties, win rate (ties count half) and the BT margin, each with an interval."""
    n_prompts = counts.shape[0]
    wins, ties = counts[:, 0].sum(axis=0), counts[:, 1].sum(axis=0)
    scores = _scores(wins, ties)
    rng = np.random.default_rng(seed)
    boot_scores, boot_rates = [], []
    a, b = (models.index(focus[0]), models.index(focus[1])) if focus else (0, 0)
    for _ in range(resamples if n_prompts else 0):
        weights = np.bincount(rng.integers(0, n_prompts, n_prompts), minlength=n_prompts)
        sample = np.tensordot(weights, counts, axes=1)
        boot_scores.append(_scores(sample[0], sample[1]))
        boot_rates.append(_win_rate(sample[0], sample[1], a, b))
    result: dict = {
        "models": list(models),
        "n_prompts": int(n_prompts),
        "comparisons": int(wins.sum() + ties.sum() / 2),
        "resamples": resamples,
        "level": level,
        "bradley_terry": {
            m: {
                "score": float(scores[k]),
                "ci": _interval([float(s[k]) for s in boot_scores], level),
            }
            for k, m in enumerate(models)
        },
    }
    if focus:
        result["head_to_head"] = {
            "model": focus[0],
            "against": focus[1],
            "wins": int(wins[a, b]),
            "losses": int(wins[b, a]),
            "ties": int(ties[a, b]),
            "win_rate": _finite(_win_rate(wins, ties, a, b)),
            "win_rate_ci": _interval(boot_rates, level),
            "bt_margin": float(scores[a] - scores[b]),
            "bt_margin_ci": _interval([float(s[a] - s[b]) for s in boot_scores], level),
        }
    return result

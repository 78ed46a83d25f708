"""Pure helpers of ``bench/loop_improves.py`` (no torch, no models): HH-RLHF transcripts as
conversational export rows, the three-way prompt split, export folders, win-rates with
intervals, the length-controlled views and the markdown table.

Everything here runs on plain Python data so ``tests/test_bench_loop.py`` checks it in
milliseconds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def hh_messages(transcript: str) -> list[dict[str, str]]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b"`` -> ``[{"role": "user", "content": "a"}, ...]``.

    Raises ValueError for a transcript that does not start with a Human turn."""
    parts = _TURN.split(transcript)
    if parts[0].strip() or len(parts) < 3 or parts[1] != "Human":
        raise ValueError("transcript must start with '\\n\\nHuman:'")
    return [
        {"role": _ROLES[parts[i]], "content": parts[i + 1].strip()}
        for i in range(1, len(parts) - 1, 2)
    ]


def hh_pair_row(chosen: str, rejected: str) -> dict[str, Any] | None:
    """One HH pair -> an export row in TRL's conversational format (SPEC §5), or None when
    the two transcripts do not share everything up to the last assistant turn (or the final
    turn is empty)."""
    try:
        good, bad = hh_messages(chosen), hh_messages(rejected)
    except ValueError:
        return None
    if len(good) < 2 or good[-1]["role"] != "assistant" or good[:-1] != bad[:-1]:
        return None
    if bad[-1]["role"] != "assistant" or not good[-1]["content"] or not bad[-1]["content"]:
        return None
    prompt = good[:-1]
    key = hashlib.sha1(json.dumps(prompt, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return pair_row(prompt, [good[-1]], [bad[-1]], key)


def pair_row(prompt: Any, chosen: Any, rejected: Any, prompt_id: str) -> dict[str, Any]:
    """One export row (SPEC §5) for a pair judged once: ``chosen`` (id ``a``) over
    ``rejected`` (id ``b``), as a preference dataset's pair is imported."""
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "margin": 1.0,
        "prompt_id": prompt_id,
        "chosen_id": "a",
        "rejected_id": "b",
        "votes_for": 1,
        "votes_against": 0,
        "votes_tie": 0,
        "n_judgments": 1,
        "agreement": 1.0,
    }


def read_hh(path: Path) -> list[dict[str, Any]]:
    """All usable pairs of an HH-RLHF ``*.jsonl.gz`` file as export rows."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            pair = json.loads(line)
            row = hh_pair_row(pair["chosen"], pair["rejected"])
            if row is not None:
                rows.append(row)
    return rows


def split_three(
    rows: list[dict[str, Any]], fractions: Sequence[float], seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Split rows by ``prompt_id`` into ``{"A", "B", "C"}`` with the given fractions of the
    prompts (summing to 1). A prompt's rows all land in one part; the parts depend only on the
    set of prompt ids and the seed."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    keys = sorted({r["prompt_id"] for r in rows})
    if len(keys) < 3:
        raise ValueError(f"need at least 3 distinct prompts to split, got {len(keys)}")
    random.Random(seed).shuffle(keys)
    n_a = max(1, round(fractions[0] * len(keys)))
    n_b = max(1, min(round(fractions[1] * len(keys)), len(keys) - n_a - 1))
    part = {k: "A" for k in keys[:n_a]}
    part.update({k: "B" for k in keys[n_a : n_a + n_b]})
    part.update({k: "C" for k in keys[n_a + n_b :]})
    out: dict[str, list[dict[str, Any]]] = {"A": [], "B": [], "C": []}
    for row in rows:
        out[part[row["prompt_id"]]].append(row)
    return out


def write_export(rows: list[dict[str, Any]], folder: Path, project: str) -> Path:
    """An export folder (SPEC §5: ``manifest.json`` + ``pairs.jsonl``) that ``prefloop train``
    reads; the same rows give the same bytes."""
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pairs.jsonl").write_bytes(body)
    manifest = {
        "format_version": 1,
        "project": project,
        "created_at": "2026-01-01T00:00:00Z",
        "strategy": "all",
        "filters": {},
        "counts": {
            "prompts": len({r["prompt_id"] for r in rows}),
            "judgments": len(rows),
            "pairs": len(rows),
        },
        "agreement": {},
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return folder


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (``successes`` may be fractional: ties as 0.5)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def wins(policy: Sequence[float], base: Sequence[float]) -> float:
    """Pairwise wins of ``policy`` over ``base`` (a tie counts one half)."""
    if len(policy) != len(base):
        raise ValueError("policy and base scores must have the same length")
    return sum(1.0 if p > b else 0.5 if p == b else 0.0 for p, b in zip(policy, base, strict=True))


def win_rate(policy: Sequence[float], base: Sequence[float]) -> dict[str, float]:
    """``{"rate", "low", "high", "n"}``: the win-rate with its 95% Wilson interval."""
    n = len(policy)
    won = wins(policy, base)
    low, high = wilson(won, n)
    return {"rate": won / n if n else float("nan"), "low": low, "high": high, "n": float(n)}


def similar_length(a: float, b: float, tolerance: float) -> bool:
    """Lengths within ``tolerance`` of the longer one (both empty counts as similar)."""
    longest = max(a, b)
    return longest == 0 or abs(a - b) / longest < tolerance


def matched_win_rate(
    policy: Sequence[float],
    base: Sequence[float],
    policy_len: Sequence[float],
    base_len: Sequence[float],
    tolerance: float = 0.2,
) -> dict[str, float]:
    """The win-rate among pairs whose lengths differ by less than ``tolerance``."""
    keep = [i for i in range(len(policy)) if similar_length(policy_len[i], base_len[i], tolerance)]
    if not keep:
        return {"rate": float("nan"), "low": 0.0, "high": 1.0, "n": 0.0}
    return win_rate([policy[i] for i in keep], [base[i] for i in keep])


def length_adjusted_gain(
    policy: Sequence[float],
    base: Sequence[float],
    policy_len: Sequence[float],
    base_len: Sequence[float],
) -> dict[str, float]:
    """Least squares of the judge-score difference on the length difference:
    ``policy - base = gain + slope * (len_policy - len_base)``. ``gain`` is the judge's
    preference at equal length, with a 95% normal interval; a gain near 0 with a large slope
    means the win is a length effect."""
    y = [p - b for p, b in zip(policy, base, strict=True)]
    x = [p - b for p, b in zip(policy_len, base_len, strict=True)]
    n = len(y)
    if n < 3:
        raise ValueError("length_adjusted_gain needs at least 3 pairs")
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((v - mx) ** 2 for v in x)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sxx if sxx else 0.0
    gain = my - slope * mx
    resid = [b - gain - slope * a for a, b in zip(x, y, strict=True)]
    sigma2 = sum(r * r for r in resid) / (n - 2)
    se = math.sqrt(sigma2 * (1 / n + (mx * mx / sxx if sxx else 0.0)))
    return {"gain": gain, "low": gain - 1.96 * se, "high": gain + 1.96 * se, "slope": slope}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats with 3 decimals."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def interval(stats: dict[str, float]) -> str:
    """``0.620 [0.52, 0.71] (n=100)``."""
    return f"{stats['rate']:.3f} [{stats['low']:.2f}, {stats['high']:.2f}] (n={int(stats['n'])})"


def report(found: dict[str, Any], timing: dict[str, tuple[float, float]]) -> str:
    """The bench's markdown: accuracies on C, win-rates over the base, PPO curve, time."""
    judge, dpo, wins = found["judge"], found["dpo"], found["wins"]
    lines = ["### Held-out accuracies on C", ""]
    lines.append(markdown_table(["measure", "value [95% Wilson]"], [
        ("judge (MiniLM, trained on A): pairwise accuracy", interval(judge)),
        ("DPO implicit-reward accuracy, before (adapter = reference: all ties)",
         interval(dpo["before"])),
        ("DPO implicit-reward accuracy, after", interval(dpo["after"])),
        ("reference log-likelihood prefers chosen (for comparison)",
         interval(dpo["reference_loglik"])),
    ]))  # fmt: skip
    lines += ["", "### Win-rate over the base on C prompts (judge = MiniLM on A; ties = 1/2)", ""]
    table = []
    for name, w in wins.items():
        gain = w["gain"] or {"gain": float("nan"), "low": float("nan"), "high": float("nan")}
        table.append((name.upper(), interval(w["win"]), interval(w["matched"]),
                      f"{gain['gain']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]",
                      f"{w['len_policy']:.1f} / {w['len_base']:.1f}",
                      f"{w['empty'][0]} / {w['empty'][1]}"))  # fmt: skip
    lines.append(markdown_table(
        ["policy", "win-rate", "win-rate, lengths within 20%", "judge gain at equal length",
         "mean tokens policy / base", "empty policy / base"], table))  # fmt: skip
    lines += ["", "### PPO (reward = SmolLM2 reward model on B)", ""]
    lines.append(markdown_table(
        ["step", "reward", "KL", "response tokens"],
        [(int(s["step"]), float(s["reward"]), float(s["kl"]), float(s["response_length"]))
         for s in found["ppo_curve"]]))  # fmt: skip
    lines += ["", "### Time (minutes; CPU = user + system of the step's processes)", ""]
    lines.append(markdown_table(["step", "wall", "CPU"], [(k, *v) for k, v in timing.items()]))
    return "\n".join(lines)

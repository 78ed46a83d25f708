"""The statistics and data plumbing of bench/loop_improves.py (pure functions, no models)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from pathlib import Path

import pytest

from training.data import load_export

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


st = _load("loop_stats")


def _row(key: str) -> dict:
    return {"prompt_id": key, "prompt": key, "chosen": "a", "rejected": "b"}


def test_hh_messages_turns_and_pair_row() -> None:
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: Like this."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: No."
    row = st.hh_pair_row(chosen, rejected)
    assert row["prompt"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how?"},
    ]
    assert row["chosen"] == [{"role": "assistant", "content": "Like this."}]
    assert row["rejected"] == [{"role": "assistant", "content": "No."}]
    other = "\n\nHuman: hey\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: No."
    assert st.hh_pair_row(chosen, other) is None  # different conversations
    assert st.hh_pair_row("Assistant: x", rejected) is None


def test_split_three_by_prompt_is_disjoint_seeded_and_sized() -> None:
    rows = [_row(f"p{i}") for i in range(100)] + [_row("p7")]  # p7 has two pairs
    parts = st.split_three(rows, (0.5, 0.3, 0.2), seed=3)
    keys = {name: {r["prompt_id"] for r in part} for name, part in parts.items()}
    assert [len(keys[n]) for n in "ABC"] == [50, 30, 20]
    assert not (keys["A"] & keys["B"] or keys["A"] & keys["C"] or keys["B"] & keys["C"])
    assert sum(len(p) for p in parts.values()) == 101
    assert st.split_three(list(reversed(rows)), (0.5, 0.3, 0.2), seed=3).keys() == parts.keys()
    again = st.split_three(list(reversed(rows)), (0.5, 0.3, 0.2), seed=3)
    assert {r["prompt_id"] for r in again["C"]} == keys["C"]  # order of rows does not matter
    other = st.split_three(rows, (0.5, 0.3, 0.2), seed=4)
    assert {r["prompt_id"] for r in other["C"]} != keys["C"]
    with pytest.raises(ValueError, match="fractions"):
        st.split_three(rows, (0.5, 0.5, 0.5), seed=3)


def test_export_folder_loads_with_training(tmp_path: Path) -> None:
    raw = tmp_path / "hh.jsonl.gz"
    pair = {"chosen": "\n\nHuman: q\n\nAssistant: yes", "rejected": "\n\nHuman: q\n\nAssistant: no"}
    with gzip.open(raw, "wt") as handle:
        handle.write(json.dumps(pair) + "\n")
    rows = st.read_hh(raw)
    export = load_export(st.write_export(rows, tmp_path / "export", "t"))
    assert export.rows == rows
    assert export.manifest["counts"] == {"prompts": 1, "judgments": 1, "pairs": 1}


def test_wilson_interval_known_values() -> None:
    low, high = st.wilson(60, 100)
    assert (round(low, 4), round(high, 4)) == (0.5020, 0.6906)  # textbook Wilson 95%
    assert st.wilson(0, 10)[0] == 0.0 and st.wilson(10, 10)[1] == 1.0
    assert st.wilson(0, 0) == (0.0, 1.0)


def test_win_rate_counts_ties_half() -> None:
    result = st.win_rate([3.0, 1.0, 2.0, 5.0], [1.0, 2.0, 2.0, 4.0])
    assert result["rate"] == pytest.approx(2.5 / 4)
    assert result["n"] == 4 and result["low"] < 0.625 < result["high"]
    with pytest.raises(ValueError):
        st.wins([1.0], [1.0, 2.0])


def test_matched_win_rate_keeps_pairs_of_similar_length() -> None:
    policy, base = [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    # pair 0 is 2x longer (dropped); pairs 1 and 2 differ by 10% and 0%
    result = st.matched_win_rate(policy, base, [20, 11, 5], [10, 10, 5], tolerance=0.2)
    assert result["n"] == 2 and result["rate"] == 0.5
    empty = st.matched_win_rate([1.0], [0.0], [100], [1])
    assert empty["n"] == 0 and math.isnan(empty["rate"])


def test_length_adjusted_gain_separates_length_from_quality() -> None:
    # score difference = 0.5 * length difference exactly: a pure length effect, no gain
    dlen = [-4.0, -1.0, 0.0, 2.0, 5.0, 8.0]
    pure = st.length_adjusted_gain([0.5 * d for d in dlen], [0.0] * 6, dlen, [0.0] * 6)
    assert pure["gain"] == pytest.approx(0.0, abs=1e-12)
    assert pure["slope"] == pytest.approx(0.5)
    # a constant +1 preference on top of the same length effect
    real = st.length_adjusted_gain(
        [1 + 0.5 * d + e for d, e in zip(dlen, [0.1, -0.1, 0.05, -0.05, 0.1, -0.1], strict=True)],
        [0.0] * 6,
        dlen,
        [0.0] * 6,
    )
    assert real["low"] < real["gain"] < real["high"]
    assert real["low"] > 0.5 and real["gain"] == pytest.approx(1.0, abs=0.2)


def test_markdown_table_and_interval_text() -> None:
    table = st.markdown_table(["a", "b"], [(1, 0.5), ("x", 2.0)])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.500 |", "| x | 2.000 |"]
    text = st.interval({"rate": 0.62, "low": 0.521, "high": 0.71, "n": 100.0})
    assert text == "0.620 [0.52, 0.71] (n=100)"


def test_report_prints_every_table() -> None:
    rate = {"rate": 0.6, "low": 0.5, "high": 0.7, "n": 100.0}
    wins = {
        "win": rate,
        "matched": rate,
        "gain": {"gain": 0.1, "low": 0.0, "high": 0.2, "slope": 0.01},
        "len_policy": 30.0,
        "len_base": 28.0,
        "empty": (0, 1),
    }
    found = {
        "judge": rate,
        "dpo": {"before": rate, "after": rate, "reference_loglik": rate},
        "wins": {"dpo": wins, "ppo": {**wins, "gain": None}},
        "ppo_curve": [{"step": 1, "reward": 0.5, "kl": 0.0, "response_length": 30.0}],
    }
    text = st.report(found, {"judge": (1.0, 0.5), "total": (2.0, 1.0)})
    assert "| DPO | 0.600 [0.50, 0.70] (n=100) |" in text
    assert "+0.100 [+0.000, +0.200] | 30.0 / 28.0 | 0 / 1 |" in text
    assert "| PPO |" in text and "nan" in text  # no length regression: shown, not hidden
    assert "| 1 | 0.500 | 0.000 | 30.000 |" in text and "| total | 2.000 | 1.000 |" in text


def test_generation_prompts_and_reading_mixed_generations(tmp_path: Path) -> None:
    loop = _load("loop_improves")
    rows = [
        {"prompt_id": f"p{i}", "prompt": [{"role": "user", "content": "x" * (10 * i)}]}
        for i in range(10)
    ]
    chosen = loop.generation_prompts(rows + rows[:2], count=4, max_chars=50, seed=1)
    assert len(chosen) == 4 and len({p["id"] for p in chosen}) == 4
    assert all(len(p["prompt"][0]["content"]) <= 50 for p in chosen)
    assert chosen == loop.generation_prompts(rows, count=4, max_chars=50, seed=1)
    out = tmp_path / "gen.jsonl"
    row = {
        "prompt": "q",
        "completions": [{"text": "base says", "model": "M"}, {"text": "tuned", "model": "M+dpo"}],
    }
    out.write_text(json.dumps(row) + "\n")
    assert loop.read_generations(out, "M") == (["q"], ["tuned"], ["base says"])

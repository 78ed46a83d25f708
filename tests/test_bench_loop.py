"""The statistics and data plumbing of bench/loop_improves.py (pure functions, no models)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from pathlib import Path

import pytest

from training.data import load_export

_SPEC = importlib.util.spec_from_file_location(
    "loop_stats", Path(__file__).resolve().parents[1] / "bench" / "loop_stats.py"
)
st = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(st)


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

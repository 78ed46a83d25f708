"""The suspects run's parts that need no training: folds by prompt, the confident-learning
ranking, the config, and cancelling between logging steps."""

import pytest
from conftest import marker_rows, write_export

import training
from training.config import ConfigError, build_config
from training.data import DataError
from training.suspects import assign_folds, rank_suspects


def test_folds_split_by_prompt_and_are_fixed_by_the_seed():
    rows = marker_rows(9, pairs_per_prompt=3)
    folds = assign_folds(rows, 3, seed=7)
    by_prompt = {}
    for row, fold in zip(rows, folds, strict=True):
        by_prompt.setdefault(row["prompt_id"], set()).add(fold)
    assert all(len(f) == 1 for f in by_prompt.values())  # every pair of a prompt in one fold
    assert sorted(f.pop() for f in by_prompt.values()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert assign_folds(rows, 3, seed=7) == folds
    with pytest.raises(DataError, match="at least 10 prompts"):
        assign_folds(rows, 10, seed=7)


def test_pairs_the_model_reverses_beyond_its_calibration_are_flagged_most_confident_first():
    p = [0.9, 0.95, 0.05, 0.85, 0.2, 0.92, 0.4, 0.97, 0.12, 0.88]
    flagged, threshold = rank_suspects(p)
    assert threshold == pytest.approx(sum(p) / len(p))
    assert flagged == [2, 8, 4]  # 1 - p >= threshold (0.624), lowest p first; 0.4 is not
    assert rank_suspects([]) == ([], pytest.approx(float("nan"), nan_ok=True))


def test_a_lone_reversed_pair_is_flagged_among_confident_ones():
    """Every pair is labeled 'chosen above rejected': with one class only, cleanlab alone
    would have no threshold for the reverse; the mirrored copies give it one."""
    flagged, threshold = rank_suspects([0.99] * 20 + [0.01])
    assert flagged == [20] and threshold > 0.9


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"folds": 1}, "folds"),
        ({"eval_fraction": 0.1}, "eval_fraction"),
        ({"dev_fraction": 0.2, "eval_steps": 5}, "dev_fraction"),
    ],
)
def test_config_refuses_what_a_suspects_run_cannot_use(overrides, field):
    with pytest.raises(ConfigError) as caught:
        build_config("suspects", overrides=overrides)
    assert caught.value.field == field
    assert build_config("suspects", preset="tiny-cpu").max_steps == 5


def test_a_cancel_stops_the_run_in_its_first_fold(tiny_llama, tmp_path):
    rows = [dict(r, labeler="ext:x") for r in marker_rows(4)]
    export = write_export(tmp_path / "export", rows, strategy="all")

    class Stop(training.Callbacks):
        def should_stop(self):
            return True

    config = {"max_steps": 5, "logging_steps": 1, "precision": "fp32"}
    with pytest.raises(training.Cancelled, match="fold 0"):
        training.run(
            "suspects",
            data=export,
            model=str(tiny_llama),
            out=tmp_path / "out",
            config=config,
            callbacks=Stop(),
        )
    assert not (tmp_path / "out" / "suspects.jsonl").exists()

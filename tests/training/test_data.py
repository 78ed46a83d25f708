"""Export folders: sha256 check, ties, split by prompt, chat rendering, prompt files."""

import hashlib
import json

import pytest
from conftest import make_tokenizer, marker_rows, write_export

from training.data import (
    DataError,
    load_export,
    load_prompts,
    prompt_key,
    render_pair,
    split_by_prompt,
    unique_prompts,
)


def test_load_export_verifies_sha256_and_skips_ties(tmp_path):
    rows = marker_rows(3)
    rows.append({**rows[0], "tie": True})
    export = load_export(write_export(tmp_path / "e", rows))
    assert len(export.rows) == len(rows) - 1 and export.skipped_ties == 1
    assert export.sha256 == json.loads((tmp_path / "e" / "manifest.json").read_text())["sha256"]


def test_sha256_mismatch_is_a_clear_error(tmp_path):
    folder = write_export(tmp_path / "e", marker_rows(3))
    with (folder / "pairs.jsonl").open("a") as handle:
        handle.write(json.dumps(marker_rows(1, seed=9)[0]) + "\n")
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_export(folder)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [({"format_version": 2}, "format_version must be 1"), ({"sha256": None}, "sha256 is missing")],
)
def test_bad_manifest(tmp_path, manifest, message):
    with pytest.raises(DataError, match=message):
        load_export(write_export(tmp_path / "e", marker_rows(2), **manifest))


def test_bad_row_names_line_and_field(tmp_path):
    rows = marker_rows(2)
    del rows[1]["rejected"]
    with pytest.raises(DataError, match="line 2: field 'rejected' is missing"):
        load_export(write_export(tmp_path / "e", rows))
    rows = marker_rows(2)
    rows[0]["margin"] = "big"
    with pytest.raises(DataError, match="line 1: field 'margin'"):
        load_export(write_export(tmp_path / "f", rows))


def test_a_line_that_is_not_json_is_named_in_exports_and_prompt_files(tmp_path):
    rows = marker_rows(2)
    folder = write_export(tmp_path / "e", rows)
    body = (folder / "pairs.jsonl").read_bytes() + b"\n{not json\n"
    (folder / "pairs.jsonl").write_bytes(body)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(body).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        DataError, match=rf"^pairs.jsonl line {len(rows) + 2}: invalid JSON \(Expecting"
    ):
        load_export(folder)
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"id": "x", "prompt": "hi"}\n[1,\n')
    with pytest.raises(DataError, match=r"^prompts.jsonl line 2: invalid JSON \("):
        load_prompts(path)


def test_missing_folder_or_only_ties(tmp_path):
    with pytest.raises(DataError, match="manifest.json is missing"):
        load_export(tmp_path)
    ties = [{**r, "tie": True} for r in marker_rows(2)]
    with pytest.raises(DataError, match="no \\(non-tie\\) pairs"):
        load_export(write_export(tmp_path / "t", ties))


def test_split_keeps_each_prompt_on_one_side_and_is_seeded():
    rows = marker_rows(30, pairs_per_prompt=3)
    train, held = split_by_prompt(rows, 0.2, seed=1)
    train_keys, held_keys = {prompt_key(r) for r in train}, {prompt_key(r) for r in held}
    assert not train_keys & held_keys
    assert len(held_keys) == 6 and len(train) + len(held) == len(rows)
    assert split_by_prompt(rows, 0.2, seed=1) == (train, held)
    assert {prompt_key(r) for r in split_by_prompt(rows, 0.2, seed=2)[1]} != held_keys
    assert split_by_prompt(rows, 0.0, seed=1) == (rows, [])


def test_prompt_key_falls_back_to_prompt_hash():
    a, b = marker_rows(2)[0], marker_rows(2)[2]
    del a["prompt_id"], b["prompt_id"]
    assert prompt_key(a) == prompt_key(dict(a)) != prompt_key(b)


def test_render_pair_applies_chat_template_to_messages():
    tokenizer = make_tokenizer()
    row = marker_rows(1, chat=True)[0]
    pair = render_pair(tokenizer, row)
    assert pair["prompt"].startswith("<|im_start|>user tell me about")
    assert pair["prompt"].endswith("<|im_start|>assistant ")
    assert pair["chosen"] == row["chosen"][0]["content"] + "<|im_end|>"
    assert pair["margin"] == 0.5
    plain_row = marker_rows(1)[0]
    raw = render_pair(tokenizer, plain_row, prompt_format="raw")
    assert raw["prompt"] == plain_row["prompt"] and raw["chosen"] == plain_row["chosen"]


def test_plain_prompt_is_one_user_turn_under_a_chat_template():
    """Bug (issue 9 §6): a plain-string prompt reached chat models as raw text."""
    tokenizer = make_tokenizer()
    row = marker_rows(1)[0]
    turn = {**row, "prompt": [{"role": "user", "content": row["prompt"]}]}
    assert render_pair(tokenizer, row) == render_pair(tokenizer, turn)
    assert render_pair(tokenizer, row, prompt_format="chat")["prompt"].startswith("<|im_start|>")
    bert = make_tokenizer(bert=True)  # no chat template: auto keeps the text
    assert render_pair(bert, row)["prompt"] == row["prompt"]
    assert render_pair(bert, row, "chat")["prompt"] == f"user: {row['prompt']}\nassistant: "
    with pytest.raises(ValueError, match="prompt_format"):
        render_pair(tokenizer, row, prompt_format="text")


def test_unique_prompts_and_prompt_files(tmp_path):
    rows = marker_rows(4, pairs_per_prompt=2)
    assert [p["id"] for p in unique_prompts(rows)] == ["p0", "p1", "p2", "p3"]
    path = tmp_path / "prompts.jsonl"
    spec_row = {"id": "x", "prompt": "hi", "completions": [{"id": "a", "text": "t"}]}
    path.write_text(json.dumps(spec_row) + "\n\n" + json.dumps({"id": "y", "prompt": []}) + "\n")
    assert [p["id"] for p in load_prompts(path)] == ["x", "y"]
    path.write_text(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(DataError, match="line 1: fields 'id' and 'prompt' are required"):
        load_prompts(path)
    path.write_text(json.dumps(spec_row) + "\n" + json.dumps(spec_row) + "\n")
    with pytest.raises(DataError, match="line 2: field 'id' 'x' is repeated"):
        load_prompts(path)

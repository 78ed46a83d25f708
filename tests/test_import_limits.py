"""A gzip bomb cannot make an import run for minutes (issue 11, defect 4): decompressed
bytes and lines count against the import's limits as they stream, and the import stops at
once with a 413, nothing written."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from app.domain.errors import TooLarge
from app.domain.importing import reader
from tests.factories import make_project
from tests.helpers.imports import counts, jsonl, post, row


def newline_bomb(mebibytes: int) -> bytes:
    """A gzip file of ``mebibytes`` MiB of newlines (about a thousandth of that packed)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    block = b"\n" * 2**20
    return b"".join(packer.compress(block) for _ in range(mebibytes)) + packer.flush()


def test_decompressed_bytes_count_and_the_reading_stops_at_once():
    bomb = newline_bomb(64)
    assert len(bomb) < 2**20 // 4
    stream = io.BytesIO(bomb)
    with pytest.raises(TooLarge) as exc:
        for _ in reader.read_lines(stream, max_bytes=2**20, max_lines=10**9):
            pass
    assert "more than 1 MiB (decompressed)" in exc.value.message
    assert stream.tell() < len(bomb) // 4  # most of the packed file was never read


def test_lines_count_even_when_blank():
    stream = io.BytesIO(newline_bomb(64))
    seen = 0
    with pytest.raises(TooLarge) as exc:
        for _ in reader.read_lines(stream, max_lines=1000):
            seen += 1
    assert seen == 1000 and "more than 1000 lines" in exc.value.message


def test_a_long_line_being_skipped_still_counts():
    stream = io.BytesIO(gzip.compress(b"x" * (3 * 2**20)))
    with pytest.raises(TooLarge):
        list(reader.read_lines(stream, max_line_bytes=1024, max_bytes=2**20))


def test_gzip_bomb_through_the_api_is_413_and_writes_nothing(
    client, db, admin_headers, monkeypatch
):
    monkeypatch.setattr(reader, "MAX_FILE_BYTES", 2**20)
    project = make_project(db)
    before = counts(db)
    body = gzip.compress(jsonl(row("p1"))) + newline_bomb(16)  # two gzip members
    response = post(client, admin_headers, project.id, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "decompressed" in response.json()["error"]["message"]
    assert counts(db) == before


def test_too_many_lines_through_the_api_is_413(client, db, admin_headers, monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINES", 3)
    project = make_project(db)
    response = post(client, admin_headers, project.id, jsonl(*(row(f"p{i}") for i in range(5))))
    assert response.status_code == 413 and "more than 3 lines" in response.text
    fits = post(client, admin_headers, project.id, jsonl(row("a"), row("b"), row("c")))
    assert fits.status_code == 200 and fits.json()["imported"] == 3

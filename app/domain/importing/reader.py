"""Reading an import file line by line, without holding it in memory.

Handles what arrives in practice: a UTF-8 byte order mark, gzip compression (detected
by its magic bytes), CRLF line ends, blank lines, bytes that are not UTF-8 and lines too
long to be a sane record. Problems are reported with their 1-based line number instead
of raised, so the importer can collect every error of a file in one pass.

The file as read (after decompression) is bounded: past ``MAX_FILE_BYTES`` bytes or
``MAX_LINES`` lines the import stops at once with ``TooLarge``, so a small gzip that
expands to gigabytes (of newlines, say) costs no more than the limit.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from app.domain.errors import Detail, TooLarge, detail

MAX_LINE_BYTES = 4 * 1024 * 1024
"""The longest line (one prompt with all its completions) an import accepts."""
MAX_FILE_BYTES = 512 * 1024 * 1024
"""The most bytes an import file may hold once decompressed."""
MAX_LINES = 5_000_000
"""The most lines (blank ones included) an import file may hold."""

_GZIP_MAGIC = b"\x1f\x8b"
_SKIP_CHUNK = 1024 * 1024

Problem = Detail
"""One problem of an import file, shaped like every ``ValidationFailed`` detail."""


class Line(NamedTuple):
    """One physical line: its text (line end kept) or the problem that replaced it."""

    number: int
    text: str
    problem: Problem | None = None


def open_maybe_gzip(stream: BinaryIO) -> BinaryIO:
    """The stream itself, or a decompressing view when it starts with the gzip magic.

    ``stream`` must be seekable (a file on disk or a spooled temporary file).
    """
    head = stream.read(2)
    stream.seek(0)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


class _Budget:
    """Counts the bytes and lines read against the file's limits."""

    def __init__(self, max_bytes: int | None, max_lines: int | None) -> None:
        self.max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
        self.max_lines = MAX_LINES if max_lines is None else max_lines
        self.bytes = 0

    def spend(self, size: int, number: int) -> None:
        self.bytes += size
        if self.bytes > self.max_bytes:
            limit = self.max_bytes // (1024 * 1024) or self.max_bytes
            unit = "MiB" if self.max_bytes >= 1024 * 1024 else "bytes"
            raise TooLarge(
                f"line {number}: the file holds more than {limit} {unit} (decompressed); "
                "import it in parts"
            )
        if number > self.max_lines:
            raise TooLarge(
                f"line {number}: the file has more than {self.max_lines} lines; import it in parts"
            )


def _skip_rest_of_line(stream: BinaryIO, budget: _Budget, number: int) -> None:
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        budget.spend(len(chunk), number)
        if not chunk or chunk.endswith(b"\n"):
            return


def _decode(raw: bytes, number: int) -> Line:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8 (byte {exc.start + 1} of the line); save the file as UTF-8"
        return Line(number, "", detail("encoding", message, number))
    if number == 1:
        text = text.removeprefix("\ufeff")
    return Line(number, text)


def read_lines(
    stream: BinaryIO,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_bytes: int | None = None,
    max_lines: int | None = None,
) -> Iterator[Line]:
    """Every line of ``stream`` (gzip or plain), numbered from 1, decoded as UTF-8.

    A line longer than ``max_line_bytes`` or not valid UTF-8 comes back with a problem
    and empty text; a damaged gzip stream ends the file with a problem. Past ``max_bytes``
    decompressed bytes or ``max_lines`` lines (default ``MAX_FILE_BYTES``, ``MAX_LINES``)
    it raises TooLarge at once.
    """
    source = open_maybe_gzip(stream)
    budget = _Budget(max_bytes, max_lines)
    number = 0
    while True:
        number += 1
        try:
            raw = source.readline(max_line_bytes + 1)
            if raw:
                budget.spend(len(raw), number)
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                _skip_rest_of_line(source, budget, number)
                limit = max_line_bytes // (1024 * 1024)
                message = f"the line is longer than {limit} MiB; one line holds one record"
                yield Line(number, "", detail("line", message, number))
                continue
        except (OSError, EOFError, zlib.error) as exc:
            yield Line(number, "", detail("file", f"cannot read the file: {exc}", number))
            return
        if not raw:
            return
        yield _decode(raw, number)

"""The three import formats of SPEC §3, each turned into a stream of ImportRow.

- ``jsonl``: one prompt a line, ``{id, prompt, completions, metadata?, gold?, judgments?}``.
- ``csv``: a header ``prompt,completion_1,…,completion_N`` with an optional ``id`` column.
- ``pairs``: preference pairs as TRL and public datasets write them, ``{prompt, chosen,
  rejected}`` (strings or chat messages) or Anthropic HH transcripts ``{chosen,
  rejected}``; each becomes a prompt with completions ``chosen`` and ``rejected`` and
  one external judgment ranking ``chosen`` first.

Each parser yields, per record, an ImportRow or the list of its problems.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import orjson

from app.domain.errors import detail
from app.domain.importing.reader import Line, Problem
from app.domain.importing.rows import (
    MAX_COMPLETIONS,
    MAX_JSON_DEPTH,
    MIN_COMPLETIONS,
    Checker,
    CompletionIn,
    ImportedJudgment,
    ImportRow,
    check_row,
    content_hash,
    plain_row,
    type_name,
)

FORMATS = ("jsonl", "csv", "pairs")
DEFAULT_PAIRS_LABELER = "ext:pairs"
HH_ASSISTANT = "\n\nAssistant:"
PAIR_FIELDS = ("id", "prompt", "chosen", "rejected", "metadata")
PAIR_RANKING = [["chosen"], ["rejected"]]
_COMPLETION_COLUMN = re.compile(r"^completion_([1-9])$")

Parsed = ImportRow | list[Problem]

if csv.field_size_limit() < 64 * 1024 * 1024:
    csv.field_size_limit(64 * 1024 * 1024)  # one cell may be a long completion


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)

_DIGIT_MASK = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19


def _fast_safe(text: str) -> bool:
    """Whether orjson reads ``text`` as the standard parser does: not when it holds a run
    of 19 digits (orjson turns integers past 64 bits into floats) or an escaped NUL (the
    record then needs every check)."""
    return "\\u0000" not in text and _LONG_NUMBER not in text.encode().translate(_DIGIT_MASK)


def _decode(text: str) -> tuple[Any, bool]:
    """The JSON value of ``text`` and whether it is *plain*: no string in it holds NUL and
    nothing nests deeper than MAX_JSON_DEPTH, so those checks can be skipped.

    orjson reads the usual line; anything it refuses (and any line it might read
    differently) goes to the standard parser, which decides and words the error.
    """
    if _fast_safe(text):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            return value, text.count("{") + text.count("[") < MAX_JSON_DEPTH
    return _DECODER.decode(text), False


def _json_object(line: Line) -> tuple[dict[str, Any], bool] | str:
    """The JSON object on this line and whether it is plain, or what is wrong with it."""
    try:
        value, plain = _decode(line.text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    except (ValueError, RecursionError) as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return f"each line must be a JSON object, got {type_name(value)}"
    return value, plain


Numbered = tuple[int, dict[str, Any], bool]
"""A line's number, its JSON object and whether that object is plain (see ``_decode``)."""


def _objects(lines: Iterator[Line]) -> Iterator[Numbered | Problem]:
    """(line number, object, plain) for every non-blank line, or the problem on that line."""
    for line in lines:
        if line.problem is not None:
            yield line.problem
        elif line.text.strip():
            parsed = _json_object(line)
            if isinstance(parsed, str):
                yield detail("json", parsed, line.number)
            else:
                yield line.number, *parsed


def parse_jsonl(lines: Iterator[Line]) -> Iterator[Parsed]:
    for item in _objects(lines):
        if not isinstance(item, tuple):
            yield [item]
            continue
        number, obj, plain = item
        if plain and (row := plain_row(obj, number)) is not None:
            yield row
        elif "completions" not in obj and {"chosen", "rejected"} <= obj.keys():
            message = "this looks like a preference pair: import the file with format=pairs"
            yield [detail("completions", message, number)]
        else:
            yield check_row(obj, number)


def parse_pairs(lines: Iterator[Line], labeler: str) -> Iterator[Parsed]:
    for item in _objects(lines):
        yield pair_row(item[1], item[0], labeler) if isinstance(item, tuple) else [item]


def _hh_split(c: Checker, chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """An HH transcript pair split into (prompt, chosen reply, rejected reply).

    The prompt is the shared part of both transcripts up to its last ``Assistant:``
    turn, so a reply that itself contains ``Assistant:`` stays whole.
    """
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(HH_ASSISTANT)
    if cut < 0:
        c.add(
            "chosen",
            "no shared '\\n\\nHuman: … \\n\\nAssistant:' conversation before the two replies; "
            "give a 'prompt' field",
        )
        return None
    cut += len(HH_ASSISTANT)
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _messages_split(
    c: Checker, chosen: list[Any], rejected: list[Any]
) -> tuple[Any, str, str] | None:
    """Conversational pairs without a prompt: the shared leading messages are the prompt."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        c.add("chosen", "chosen and rejected share no leading messages; give a 'prompt' field")
        return None
    prompt = c.prompt(chosen[:shared])
    replies = [
        _reply_text(c, side[shared:], name)
        for side, name in ((chosen, "chosen"), (rejected, "rejected"))
    ]
    if prompt is None or replies[0] is None or replies[1] is None:
        return None
    return prompt, replies[0], replies[1]


def _reply_text(c: Checker, value: Any, name: str) -> str | None:
    """A reply: a string, or the content of its (assistant) messages joined by blank lines."""
    if isinstance(value, str):
        return c.text(value, name)
    if isinstance(value, list):
        if not value:
            c.add(name, "has no reply after the shared messages")
            return None
        messages = c.prompt(value, name)
        return None if messages is None else "\n\n".join(m["content"] for m in messages)
    c.add(name, f"must be a string or a list of messages, got {type_name(value)}")
    return None


def _pair_parts(c: Checker, obj: dict[str, Any]) -> tuple[Any, str, str] | None:
    chosen, rejected = obj.get("chosen"), obj.get("rejected")
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if value is None:
            c.add(name, "missing")
    if chosen is None or rejected is None:
        return None
    if "prompt" in obj:
        prompt = c.prompt(obj["prompt"])
        texts = _reply_text(c, chosen, "chosen"), _reply_text(c, rejected, "rejected")
        if prompt is None or texts[0] is None or texts[1] is None:
            return None
        return prompt, texts[0], texts[1]
    if isinstance(chosen, str) and isinstance(rejected, str):
        return _hh_split(c, chosen, rejected)
    if isinstance(chosen, list) and isinstance(rejected, list):
        return _messages_split(c, chosen, rejected)
    c.add("rejected", "chosen and rejected must both be strings or both lists of messages")
    return None


def pair_row(obj: dict[str, Any], line: int, labeler: str) -> Parsed:
    """A preference pair as a prompt with two completions and one external judgment."""
    c = Checker(line)
    c.unknown_fields(obj, PAIR_FIELDS, "")
    external_id = c.identifier(obj["id"], "id") if "id" in obj else None
    metadata = c.json_object(obj.get("metadata"), "metadata")
    parts = _pair_parts(c, obj)
    if c.details or parts is None:
        return c.details
    prompt, chosen, rejected = parts
    return ImportRow(
        line,
        external_id or "pair-" + content_hash(prompt, chosen, rejected),
        prompt,
        [CompletionIn("chosen", chosen), CompletionIn("rejected", rejected)],
        metadata,
        judgments=[ImportedJudgment(labeler, [list(t) for t in PAIR_RANKING])],
        id_from="id" if external_id else "content",
    )


def _csv_header(cells: list[str], line: int) -> tuple[dict[str, int], list[Problem]]:
    """Column positions by name, and the header's problems."""
    names = [cell.strip().lower() for cell in cells]
    problems = [
        detail(
            "header",
            f"unknown column {cell!r}; use id, prompt, completion_1 … completion_{MAX_COMPLETIONS}",
            line,
        )
        for cell in names
        if cell not in ("id", "prompt") and not _COMPLETION_COLUMN.match(cell)
    ]
    problems += [
        detail("header", f"column {n!r} appears twice", line)
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    if "prompt" not in names:
        problems.append(detail("header", "no 'prompt' column", line))
    if sum(1 for n in names if _COMPLETION_COLUMN.match(n)) < MIN_COMPLETIONS:
        problems.append(detail("header", "needs at least completion_1 and completion_2", line))
    return {name: i for i, name in enumerate(names)}, problems


def _csv_row(cells: list[str], line: int, columns: dict[str, int]) -> Parsed:
    c = Checker(line)
    if len(cells) != len(columns):
        c.add("row", f"the row has {len(cells)} cells but the header has {len(columns)}")
        return c.details
    prompt = c.text(cells[columns["prompt"]], "prompt", allow_empty=False)
    completions = []
    for name, i in sorted(columns.items(), key=lambda kv: kv[1]):
        if _COMPLETION_COLUMN.match(name) and cells[i].strip():
            text = c.text(cells[i], name)
            completions.append(CompletionIn(name, text or ""))
    if not MIN_COMPLETIONS <= len(completions) <= MAX_COMPLETIONS:
        c.add(
            "completions",
            f"a prompt needs at least {MIN_COMPLETIONS} non-empty "
            f"completion cells, got {len(completions)}",
        )
    given_id = cells[columns["id"]].strip() if "id" in columns else ""
    external_id = c.identifier(given_id, "id") if given_id else None
    if c.details or prompt is None:
        return c.details
    if external_id is None:
        return ImportRow(
            line, "csv-" + content_hash(prompt), prompt, completions, id_from="prompt text"
        )
    return ImportRow(line, external_id, prompt, completions)


def _numbered_texts(lines: Iterator[Line], position: list[int], problems: list[Problem]):
    """Line texts for the csv module; a line with a problem becomes a blank line."""
    for line in lines:
        position[0] = line.number
        if line.problem is not None:
            problems.append(line.problem)
            yield "\n"
        else:
            yield line.text


def parse_csv(lines: Iterator[Line]) -> Iterator[Parsed]:
    position, pending = [0], []
    reader = csv.reader(_numbered_texts(lines, position, pending))
    columns: dict[str, int] | None = None
    while True:
        start = position[0] + 1
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            yield [*pending, detail("row", f"not valid CSV: {exc}", position[0])]
            return
        if pending:
            yield list(pending)
            pending.clear()
        if cells is None:
            return
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns, header_problems = _csv_header(cells, start)
            if header_problems:
                yield header_problems
                return
            continue
        yield _csv_row(cells, start, columns)


def parse(
    fmt: str, lines: Iterator[Line], *, labeler: str = DEFAULT_PAIRS_LABELER
) -> Iterator[Parsed]:
    """The records of a file in ``fmt`` (one of FORMATS)."""
    if fmt == "csv":
        return parse_csv(lines)
    if fmt == "pairs":
        return parse_pairs(lines, labeler)
    return parse_jsonl(lines)

"""Canonical JSON lines: the same rows always give the same bytes (SPEC §5)."""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Sequence
from typing import Any

FLOAT_DIGITS = 4

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_encode_string = json.encoder.encode_basestring  # what _encoder uses for a str
encode_str = _encode_string
"""``encode_json`` of a value known to be a ``str`` (one C call)."""


def encode_json(value: Any) -> str:
    """Compact JSON without ASCII escaping or NaN: the encoding of every exported value."""
    return _encode_string(value) if type(value) is str else _encoder.encode(value)


def float_json(value: float) -> str:
    """A float rounded to ``FLOAT_DIGITS`` places, written as ``json`` writes it."""
    if not math.isfinite(value):
        raise ValueError(f"cannot export a non-finite number: {value!r}")
    return float.__repr__(round(value, FLOAT_DIGITS))


_SCALAR_JSON = {True: "true", False: "false", None: "null"}


def serialize_rows(rows: Sequence[dict[str, Any]]) -> bytes:
    """JSON lines: compact, UTF-8, keys in row order, top-level floats to 4 places.

    Strings, lists and dicts shared between rows (the prompt, a completion's text)
    are encoded once per call: the rows keep them alive, so ``id`` is a safe key.
    """
    memo: dict[int, str] = {}
    keys: dict[str, str] = {}
    lines = []
    for row in rows:
        parts = []
        for key, value in row.items():
            kind = type(value)
            if kind is int:
                text = int.__repr__(value)
            elif kind is float:
                text = float_json(value)
            elif kind is bool or value is None:
                text = _SCALAR_JSON[value]
            else:
                text = memo.get(id(value))
                if text is None:
                    text = memo[id(value)] = encode_json(value)
            head = keys.get(key)
            if head is None:
                head = keys[key] = encode_json(key) + ":"
            parts.append(head + text)
        lines.append("{" + ",".join(parts) + "}\n")
    return "".join(lines).encode("utf-8")


def serialize_row(row: dict[str, Any]) -> bytes:
    """One canonical JSON line (see :func:`serialize_rows`)."""
    return serialize_rows((row,))

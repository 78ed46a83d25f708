"""The fast path of JSON Lines imports (orjson, then ``plain_row``) gives exactly what the
standard parser and the field-by-field checks (``check_row``) give, rows and problems."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.importing.formats import _DECODER, parse
from app.domain.importing.reader import read_lines
from app.domain.importing.rows import MAX_JSON_DEPTH, check_row


def parsed(line: str) -> Any:
    return next(parse("jsonl", read_lines(io.BytesIO(line.encode() + b"\n"))))


def reference(line: str) -> Any:
    """What the standard parser and the full checks make of one line."""
    return check_row(_DECODER.decode(line), 1)


def record(**fields: Any) -> dict[str, Any]:
    base = {"id": "p1", "prompt": "Say hi", "completions": [{"id": "a", "text": "hi"}]}
    base["completions"].append({"id": "b", "text": "hello"})
    return {**base, **fields}


def test_integers_past_64_bits_stay_integers() -> None:
    line = json.dumps(record(metadata={"big": 2**70, "neg": -(2**64) - 1}))
    row = parsed(line)
    assert row.metadata == {"big": 2**70, "neg": -(2**64) - 1}
    assert type(row.metadata["big"]) is int
    assert row == reference(line)


def test_escaped_nul_is_still_refused() -> None:
    comps = [{"id": "a", "text": "x\u0000"}, {"id": "b", "text": "y", "metadata": {"k": "\u0000"}}]
    line = json.dumps(record(completions=comps))
    problems = parsed(line)
    assert [p["field"] for p in problems] == ["completions[0].text", "completions[1].metadata"]
    assert problems == reference(line)


def test_deep_metadata_is_still_refused() -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = {"k": deep}
    line = json.dumps(record(metadata=deep))
    problems = parsed(line)
    assert [p["field"] for p in problems] == ["metadata"]
    assert problems == reference(line)


def test_what_orjson_refuses_gets_the_standard_answer() -> None:
    for line in ('{"id": 1e400, "prompt": "x"}', '{"id": "\\ud800", "prompt": "x"}'):
        assert parsed(line) == reference(line)
    nan = parsed('{"id": "p1", "prompt": NaN}')
    assert nan == [
        {"line": 1, "field": "json", "message": "not valid JSON: NaN is not allowed in JSON"}
    ]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
ids = st.text(min_size=0, max_size=6) | st.integers(-3, 3)
completion = st.fixed_dictionaries(
    {"id": ids, "text": st.text(max_size=8)},
    optional={"model": st.none() | st.text(max_size=4), "metadata": json_values},
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "bot"]), "content": st.text(max_size=5)}
    ),
    max_size=3,
)
judgment = st.fixed_dictionaries(
    {"labeler": st.sampled_from(["ext:a", "ext:b", "bob"])},
    optional={"ranking": st.lists(st.lists(st.sampled_from("abc"), max_size=2), max_size=3)},
)
records = st.fixed_dictionaries(
    {
        "id": ids,
        "prompt": st.text(max_size=6) | messages,
        "completions": st.lists(completion, min_size=1, max_size=4),
    },
    optional={
        "metadata": json_values,
        "gold": st.none() | st.lists(st.lists(st.sampled_from("ab"))),
        "judgments": st.none() | st.lists(judgment, max_size=2),
    },
)


@settings(max_examples=300, deadline=None)
@given(records)
def test_fast_path_matches_the_full_checks(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, ensure_ascii=False)
    assert parsed(line) == reference(line)

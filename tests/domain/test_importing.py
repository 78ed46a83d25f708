"""Import parsers without a database (SPEC §3): every format, every problem shape, and
round trips of generated records through the bytes of each format."""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.errors import ValidationFailed
from app.domain.importing.file import MAX_PROBLEMS, check_options, consume, refusal
from app.domain.importing.formats import parse
from app.domain.importing.reader import read_lines
from app.domain.importing.rows import ImportRow


def parsed(data: bytes | str, fmt: str = "jsonl", **options: Any) -> list[Any]:
    raw = data.encode() if isinstance(data, str) else data
    return list(parse(fmt, read_lines(io.BytesIO(raw), **options)))


def run(data: bytes | str, fmt: str = "jsonl", **options: Any) -> tuple[list[ImportRow], list]:
    """The rows ``consume`` passes on, and the problems it returns."""
    rows: list[ImportRow] = []
    problems, _ = consume(parsed(data, fmt, **options), rows.append)
    return rows, problems


def where(problems: list[dict]) -> list[tuple[int | None, str]]:
    assert all(list(p) == ["line", "field", "message"] for p in problems)
    return [(p["line"], p["field"]) for p in problems]


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


GOOD = {
    "id": "p1",
    "prompt": "Say hi",
    "completions": [{"id": "a", "text": "hi"}, {"id": "b", "text": "hello", "model": "m"}],
}


# --- every format ------------------------------------------------------------------


def test_jsonl_record_with_gold_and_judgments():
    record = {
        **GOOD,
        "metadata": {"source": "x"},
        "gold": [["b"], ["a"]],
        "judgments": [{"labeler": "ext:ann", "ranking": [["a", "b"]]}],
    }
    (row,), problems = run(jsonl(record))
    assert problems == []
    assert (row.line, row.external_id, row.prompt, row.metadata) == (
        1,
        "p1",
        "Say hi",
        {"source": "x"},
    )
    assert [(c.external_id, c.text, c.model) for c in row.completions] == [
        ("a", "hi", None),
        ("b", "hello", "m"),
    ]
    assert row.gold == [["b"], ["a"]]
    assert [(j.labeler, j.ranking, j.reject_all) for j in row.judgments] == [
        ("ext:ann", [["a", "b"]], False)
    ]


def test_jsonl_chat_prompt_bom_crlf_blank_lines_and_gzip():
    chat = {**GOOD, "prompt": [{"role": "user", "content": "hi"}]}
    text = "\ufeff" + json.dumps(chat) + "\r\n\r\n" + json.dumps({**GOOD, "id": 2}) + "\n"
    rows, problems = run(gzip.compress(text.encode()))
    assert problems == []
    assert [(r.line, r.external_id) for r in rows] == [(1, "p1"), (3, "2")]
    assert rows[0].prompt == [{"role": "user", "content": "hi"}]


def test_csv_with_and_without_id_column():
    rows, problems = run(
        "id,prompt,completion_1,completion_2,completion_3\nq1,Hi?,yes,no,\n", "csv"
    )
    assert problems == []
    assert [(r.line, r.external_id, r.prompt) for r in rows] == [(2, "q1", "Hi?")]
    assert [c.external_id for c in rows[0].completions] == ["completion_1", "completion_2"]
    rows, _ = run('prompt,completion_1,completion_2\n"multi\nline",a,b\n', "csv")
    assert rows[0].id_from == "prompt text" and rows[0].prompt == "multi\nline"


@pytest.mark.parametrize(
    ("record", "prompt", "chosen", "rejected"),
    [
        ({"prompt": "Q", "chosen": "good", "rejected": "bad"}, "Q", "good", "bad"),
        (
            {
                "chosen": "\n\nHuman: Q\n\nAssistant: good",
                "rejected": "\n\nHuman: Q\n\nAssistant: bad",
            },
            "\n\nHuman: Q\n\nAssistant:",
            " good",
            " bad",
        ),
        (
            {
                "chosen": [
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": "good"},
                ],
                "rejected": [
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": "bad"},
                ],
            },
            [{"role": "user", "content": "Q"}],
            "good",
            "bad",
        ),
    ],
)
def test_pairs_in_each_shape(record, prompt, chosen, rejected):
    (row,), problems = run(jsonl(record), "pairs")
    assert problems == []
    assert row.prompt == prompt
    assert [(c.external_id, c.text) for c in row.completions] == [
        ("chosen", chosen),
        ("rejected", rejected),
    ]
    assert [(j.labeler, j.ranking) for j in row.judgments] == [
        ("ext:pairs", [["chosen"], ["rejected"]])
    ]
    assert row.id_from == "content" and row.external_id.startswith("pair-")


def test_pairs_take_the_labeler_given():
    rows = parsed(
        jsonl({"prompt": "Q", "chosen": "a", "rejected": "b"}), "pairs", max_line_bytes=1000
    )
    assert rows[0].judgments[0].labeler == "ext:pairs"
    (row,) = list(
        parse(
            "pairs",
            read_lines(io.BytesIO(b'{"prompt":"Q","chosen":"a","rejected":"b"}')),
            labeler="ext:me",
        )
    )
    assert row.judgments[0].labeler == "ext:me"


# --- every problem shape ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        (b"\xff\xfe{}\n", "jsonl", [(1, "encoding")]),
        (b"{nope\n", "jsonl", [(1, "json")]),
        (b"NaN\n", "jsonl", [(1, "json")]),
        (b"[1, 2]\n", "jsonl", [(1, "json")]),
        (b"", "jsonl", [(None, "file")]),
        (b"\n\n", "csv", [(None, "file")]),
        (gzip.compress(jsonl(GOOD).encode())[:-6], "jsonl", [(2, "file")]),
        (jsonl({"chosen": "a", "rejected": "b"}).encode(), "jsonl", [(1, "completions")]),
        (jsonl({**GOOD, "extra": 1}).encode(), "jsonl", [(1, "extra")]),
        (jsonl({**GOOD, "id": ""}).encode(), "jsonl", [(1, "id")]),
        (jsonl({**GOOD, "prompt": 3}).encode(), "jsonl", [(1, "prompt")]),
        (
            jsonl({**GOOD, "prompt": [{"role": "boss", "content": "x"}]}).encode(),
            "jsonl",
            [(1, "prompt[0].role")],
        ),
        (
            jsonl({**GOOD, "completions": [{"id": "a", "text": "x"}]}).encode(),
            "jsonl",
            [(1, "completions")],
        ),
        (
            jsonl(
                {
                    **GOOD,
                    "completions": [{"id": "a", "text": "x", "n": 1}, {"id": "a", "text": "y"}],
                }
            ).encode(),
            "jsonl",
            [(1, "completions[0].n"), (1, "completions[1].id")],
        ),
        (jsonl({**GOOD, "metadata": []}).encode(), "jsonl", [(1, "metadata")]),
        (jsonl({**GOOD, "gold": [["a"]]}).encode(), "jsonl", [(1, "gold")]),
        (
            jsonl({**GOOD, "judgments": [{"labeler": "bob", "ranking": [["a"], ["b"]]}]}).encode(),
            "jsonl",
            [(1, "judgments[0].labeler")],
        ),
        (
            jsonl(
                {**GOOD, "judgments": [{"labeler": "ext:x", "ranking": [["a"], ["a"]]}]}
            ).encode(),
            "jsonl",
            [(1, "judgments[0].ranking"), (1, "judgments[0].ranking")],
        ),
        (
            jsonl({**GOOD, "judgments": [{"labeler": "ext:x", "reject_all": True}] * 2}).encode(),
            "jsonl",
            [(1, "judgments[1].labeler")],
        ),
        (jsonl(GOOD, GOOD).encode(), "jsonl", [(2, "id")]),
        (b"prompt,completion_1,completion_2\nsame,a,b\nsame,c,d\n", "csv", [(3, "prompt")]),
        (
            b"prompt,completion_1,bogus,prompt\n",
            "csv",
            [(1, "header"), (1, "header"), (1, "header")],
        ),
        (b"id,completion_1\n", "csv", [(1, "header"), (1, "header")]),
        (b"prompt,completion_1,completion_2\nq,a\n", "csv", [(2, "row")]),
        (b"prompt,completion_1,completion_2\nq,a,\n", "csv", [(2, "completions")]),
        (b"prompt,completion_1,completion_2\n,a,b\n", "csv", [(2, "prompt")]),
        (b'prompt,completion_1,completion_2\n"q\x00",a,b\n', "csv", [(2, "prompt")]),
        (jsonl({"prompt": "Q", "chosen": "a"}).encode(), "pairs", [(1, "rejected")]),
        (jsonl({"chosen": "x", "rejected": "y"}).encode(), "pairs", [(1, "chosen")]),
        (jsonl({"chosen": "x", "rejected": ["y"]}).encode(), "pairs", [(1, "rejected")]),
        (
            jsonl({"prompt": "Q", "chosen": "a", "rejected": "b", "why": 1}).encode(),
            "pairs",
            [(1, "why")],
        ),
    ],
)
def test_each_problem_names_its_line_and_field(data, fmt, expected):
    rows, problems = run(data, fmt)
    assert where(problems) == expected
    assert all(p["message"] for p in problems)


def test_an_overlong_line_is_one_problem_and_reading_goes_on():
    data = b"x" * 500 + b"\n" + jsonl(GOOD).encode()
    rows, problems = run(data, max_line_bytes=400)
    assert where(problems) == [(1, "line")] and rows == []
    assert "MiB" in problems[0]["message"]


def test_the_first_problem_stops_the_rows_and_problems_stop_at_the_cap():
    rows, problems = run(jsonl(GOOD) + "nope\n" * (MAX_PROBLEMS + 10) + jsonl({**GOOD, "id": "p9"}))
    assert [r.external_id for r in rows] == ["p1"]
    assert len(problems) == MAX_PROBLEMS


def test_identical_pairs_are_counted_as_repeats_not_problems():
    pair = {"prompt": "Q", "chosen": "a", "rejected": "b"}
    rows: list[ImportRow] = []
    problems, repeats = consume(parsed(jsonl(pair, pair), "pairs"), rows.append)
    assert (len(rows), problems, repeats) == (1, [], 1)


def test_the_refusal_summarises_every_problem():
    _, problems = run(b"nope\n{}\n")
    error = refusal(problems)
    assert error.details == problems
    assert error.message.startswith("import refused, nothing was written: line 1: json: ")
    assert error.message.endswith("(and 4 more problem(s))")
    capped = refusal([problems[0]] * MAX_PROBLEMS)
    assert capped.message.endswith(f"(and {MAX_PROBLEMS - 1}+ more problem(s))")


@pytest.mark.parametrize(
    ("fmt", "labeler", "field"), [("xml", "ext:a", "format"), ("pairs", "bob", "labeler")]
)
def test_import_options_are_checked(fmt, labeler, field):
    with pytest.raises(ValidationFailed) as exc:
        check_options(fmt, labeler)
    assert [d["field"] for d in exc.value.details] == [field]


# --- round trips --------------------------------------------------------------------

texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    completion_ids = draw(st.lists(ids, min_size=2, max_size=9, unique=True))
    prompt = draw(
        st.one_of(
            texts.filter(str.strip),
            st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["system", "user", "assistant"]), "content": texts}
                ),
                min_size=1,
                max_size=3,
            ),
        )
    )
    order = draw(st.permutations(completion_ids))
    return {
        "id": draw(ids),
        "prompt": prompt,
        "completions": [{"id": c, "text": draw(texts)} for c in completion_ids],
        "metadata": draw(st.dictionaries(ids, texts, max_size=2)),
        "gold": [[c] for c in order] if draw(st.booleans()) else None,
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4, unique_by=lambda r: r["id"]))
def test_jsonl_round_trip(items):
    rows, problems = run(jsonl(*items))
    assert problems == []
    for row, item in zip(rows, items, strict=True):
        assert (row.external_id, row.prompt, row.metadata, row.gold) == (
            item["id"],
            item["prompt"],
            item["metadata"],
            item["gold"],
        )
        assert [(c.external_id, c.text) for c in row.completions] == [
            (c["id"], c["text"]) for c in item["completions"]
        ]


cells = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=30
).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(ids, cells, st.lists(cells, min_size=2, max_size=9)),
        min_size=1,
        max_size=4,
        unique_by=lambda r: r[0],
    )
)
def test_csv_round_trip(items):
    width = max(len(c) for _, _, c in items)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "prompt", *(f"completion_{i + 1}" for i in range(width))])
    for external_id, prompt, completions in items:
        writer.writerow([external_id, prompt, *completions, *[""] * (width - len(completions))])
    rows, problems = run(out.getvalue(), "csv")
    assert problems == []
    for row, (external_id, prompt, completions) in zip(rows, items, strict=True):
        assert (row.external_id, row.prompt) == (external_id, prompt)
        assert [c.text for c in row.completions] == completions


@settings(max_examples=60, deadline=None)
@given(texts.filter(str.strip), texts, texts)
def test_pairs_round_trip(prompt, chosen, rejected):
    record = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    (row,), problems = run(jsonl(record), "pairs")
    assert problems == []
    assert (row.prompt, [c.text for c in row.completions]) == (prompt, [chosen, rejected])

"""`POST /api/v1/projects/{id}/import` (SPEC §3): all or nothing, every error with its
line and field, re-import is a no-op."""

from __future__ import annotations

import gzip

import pytest
from sqlalchemy import select

from app.db.models import Completion, Judgment, Prompt, User
from app.web.api import imports
from tests.factories import make_project
from tests.helpers.imports import counts, jsonl, post, problems, row


@pytest.fixture
def project(db):
    return make_project(db, k=3)


BAD_FILES = {
    "bad json": (jsonl(row("ok")) + b'{"id": "x", "prompt": \n', None, (2, "json")),
    "nan": (
        b'{"id": "x", "prompt": "q", "completions": [], "metadata": {"x": NaN}}\n',
        None,
        (1, "json"),
    ),
    "not an object": (b'["p1", "q"]\n', None, (1, "json")),
    "prompt type": (jsonl(row(prompt=3)), None, (1, "prompt")),
    "text type": (
        jsonl(row(completions=[{"id": "a", "text": "x"}, {"id": "b", "text": 7}])),
        None,
        (1, "completions[1].text"),
    ),
    "message role": (
        jsonl(row(prompt=[{"role": "robot", "content": "hi"}])),
        None,
        (1, "prompt[0].role"),
    ),
    "missing id": (jsonl({k: v for k, v in row().items() if k != "id"}), None, (1, "id")),
    "missing completions": (jsonl({"id": "p", "prompt": "q"}), None, (1, "completions")),
    "missing completion text": (
        jsonl(row(completions=[{"id": "a"}, {"id": "b", "text": ""}])),
        None,
        (1, "completions[0].text"),
    ),
    "unknown field": (jsonl(row(colour="red")), None, (1, "colour")),
    "unknown completion field": (
        jsonl(row(completions=[{"id": "a", "text": "x", "score": 1}, {"id": "b", "text": "y"}])),
        None,
        (1, "completions[0].score"),
    ),
    "duplicate prompt id": (jsonl(row("p1"), row("p2"), row("p1")), None, (3, "id")),
    "duplicate completion id": (
        jsonl(row(completions=[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])),
        None,
        (1, "completions[1].id"),
    ),
    "one completion": (jsonl(row(n=1)), None, (1, "completions")),
    "ten completions": (jsonl(row(n=10)), None, (1, "completions")),
    "gold misses one": (jsonl(row(n=3, gold=[["a"], ["b"]])), None, (1, "gold")),
    "gold repeats one": (jsonl(row(n=2, gold=[["a"], ["b"], ["a"]])), None, (1, "gold")),
    "judgment misses one": (
        jsonl(row(n=3, judgments=[{"labeler": "ext:x", "ranking": [["a", "b"]]}])),
        None,
        (1, "judgments[0].ranking"),
    ),
    "judgment unknown id": (
        jsonl(row(judgments=[{"labeler": "ext:x", "ranking": [["a"], ["z"]]}])),
        None,
        (1, "judgments[0].ranking"),
    ),
    "internal labeler": (
        jsonl(row(judgments=[{"labeler": "alice", "ranking": [["a"], ["b"]]}])),
        None,
        (1, "judgments[0].labeler"),
    ),
    "labeler twice": (
        jsonl(
            row(
                judgments=[
                    {"labeler": "ext:x", "ranking": [["a"], ["b"]]},
                    {"labeler": "ext:x", "ranking": [["b"], ["a"]]},
                ]
            )
        ),
        None,
        (1, "judgments[1].labeler"),
    ),
    "nul in text": (
        jsonl(row(completions=[{"id": "a", "text": "x\u0000"}, {"id": "b", "text": "y"}])),
        None,
        (1, "completions[0].text"),
    ),
    "nul in model": (
        jsonl(
            row(
                completions=[{"id": "a", "text": "x", "model": "m\u0000"}, {"id": "b", "text": "y"}]
            )
        ),
        None,
        (1, "completions[0].model"),
    ),
    "invalid utf-8": (
        jsonl(row("p1")) + b'{"id": "p2", "prompt": "caf\xe9"}\n',
        None,
        (2, "encoding"),
    ),
    "empty file": (b"", None, (None, "file")),
    "only blank lines": (b"\n  \n\r\n", None, (None, "file")),
    "pair in jsonl": (
        jsonl({"prompt": "q", "chosen": "a", "rejected": "b"}),
        None,
        (1, "completions"),
    ),
    "csv ragged row": (
        b"id,prompt,completion_1,completion_2\np1,q,a,b\np2,q2,a\n",
        "csv",
        (3, "row"),
    ),
    "csv no prompt column": (b"id,completion_1,completion_2\np1,a,b\n", "csv", (1, "header")),
    "csv one completion": (b"prompt,completion_1,completion_2\nq,a,\n", "csv", (2, "completions")),
    "pairs without rejected": (jsonl({"prompt": "q", "chosen": "a"}), "pairs", (1, "rejected")),
    "pairs unknown field": (
        jsonl({"prompt": "q", "chosen": "a", "rejected": "b", "x": 1}),
        "pairs",
        (1, "x"),
    ),
    "hh without assistant": (
        jsonl({"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: yo"}),
        "pairs",
        (1, "chosen"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_is_refused_and_nothing_is_written(client, db, admin_headers, project, case):
    body, fmt, expected = BAD_FILES[case]
    before = counts(db)
    response = post(client, admin_headers, project.id, body, fmt)
    assert expected in problems(response)
    assert response.json()["error"]["code"] == "validation_failed"
    assert counts(db) == before


def test_every_error_is_listed_not_just_the_first(client, db, admin_headers, project):
    body = jsonl(row("p1", n=1), row("p2"), row("p3", prompt=""), row("p2")) + b"oops\n"
    found = problems(post(client, admin_headers, project.id, body))
    assert found == [(1, "completions"), (3, "prompt"), (4, "id"), (5, "json")]


def test_errors_stop_at_one_hundred(client, db, admin_headers, project):
    body = b"nope\n" * 150
    response = post(client, admin_headers, project.id, body)
    assert len(problems(response)) == 100
    assert "(and 99+ more problem(s))" in response.json()["error"]["message"]


def test_error_after_a_written_batch_rolls_everything_back(client, db, admin_headers, project):
    before = counts(db)
    good = [
        row(f"p{i}", judgments=[{"labeler": "ext:early", "ranking": [["a"], ["b"]]}])
        for i in range(1500)
    ]
    response = post(client, admin_headers, project.id, jsonl(*good, row("bad", n=1)))
    assert problems(response) == [(1501, "completions")]
    assert counts(db) == before
    assert db.scalar(select(User).where(User.username == "ext:early")) is None


def test_ten_megabyte_line_is_refused_cleanly(client, db, admin_headers, project):
    huge = row(
        "big", completions=[{"id": "a", "text": "x" * (10 * 2**20)}, {"id": "b", "text": "y"}]
    )
    before = counts(db)
    response = post(client, admin_headers, project.id, jsonl(row("p1"), huge, row("p1")))
    assert problems(response) == [(2, "line"), (3, "id")]
    assert "MiB" in response.json()["error"]["details"][0]["message"]
    assert counts(db) == before


def test_body_over_the_upload_limit_is_413(client, admin_headers, project, monkeypatch):
    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 1000)
    response = post(client, admin_headers, project.id, jsonl(*[row(f"p{i}") for i in range(20)]))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_jsonl_import_writes_every_field(client, db, admin_headers, project):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    record = {
        "id": "p-17",
        "prompt": chat,
        "metadata": {"source": "demo"},
        "completions": [
            {"id": "a", "text": "Open the windows.", "model": "base-v1", "metadata": {"t": 0.7}},
            {"id": "b", "text": "Buy a fan."},
            {"id": "c", "text": ""},
        ],
        "gold": [["a"], ["b", "c"]],
    }
    response = post(client, admin_headers, project.id, jsonl(record, row("p-18", n=2)))
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 2, "skipped": 0}
    prompt = db.scalar(select(Prompt).where(Prompt.external_id == "p-17"))
    assert (prompt.prompt, prompt.metadata_, prompt.gold) == (
        chat,
        {"source": "demo"},
        [["a"], ["b", "c"]],
    )
    assert (prompt.is_gold, prompt.target_labels, prompt.n_judgments, prompt.slots_taken) == (
        True,
        3,
        0,
        0,
    )
    completions = db.scalars(
        select(Completion).where(Completion.prompt_id == prompt.id).order_by(Completion.position)
    ).all()
    assert [(c.external_id, c.position, c.model) for c in completions] == [
        ("a", 0, "base-v1"),
        ("b", 1, None),
        ("c", 2, None),
    ]
    assert completions[0].metadata_ == {"t": 0.7} and completions[2].text == ""
    other = db.scalar(select(Prompt).where(Prompt.external_id == "p-18"))
    assert other.gold is None and not other.is_gold
    assert db.scalar(select(Prompt.gold.is_(None)).where(Prompt.id == other.id))


def test_imported_judgments_count_and_create_external_labelers(client, db, admin_headers, project):
    orders = ["abc", "acb", "abc", "bac"]
    judgments = [
        {"labeler": f"ext:ann{i}", "ranking": [[c] for c in order]}
        for i, order in enumerate(orders)
    ]
    judgments.append({"labeler": "ext:ann9", "reject_all": True})
    response = post(client, admin_headers, project.id, jsonl(row("p1", n=3, judgments=judgments)))
    assert response.status_code == 200, response.text
    prompt = db.scalar(select(Prompt).where(Prompt.external_id == "p1"))
    assert (prompt.n_judgments, prompt.slots_taken, prompt.target_labels) == (5, 5, 5)
    assert prompt.agreement == pytest.approx(12 / 18)  # agreeing labeler pairs over all
    assert prompt.kendall_w is not None and 0 < prompt.kendall_w < 1
    labelers = db.scalars(select(User).where(User.username.like("ext:%"))).all()
    assert {u.username for u in labelers} == {
        "ext:ann0",
        "ext:ann1",
        "ext:ann2",
        "ext:ann3",
        "ext:ann9",
    }
    assert all(u.is_external and u.password_hash is None and u.role == "labeler" for u in labelers)
    reject = db.scalar(
        select(Judgment)
        .join(User, User.id == Judgment.labeler_id)
        .where(User.username == "ext:ann9")
    )
    assert reject.reject_all and reject.ranking is None and reject.assignment_id is None


def test_reimport_is_a_noop_and_skips_judgments_of_known_prompts(
    client, db, admin_headers, project
):
    first = jsonl(row("p1"), row("p2"))
    assert post(client, admin_headers, project.id, first).json() == {"imported": 2, "skipped": 0}
    before = counts(db)
    judged = row("p1", judgments=[{"labeler": "ext:late", "ranking": [["a"], ["b"]]}])
    again = post(client, admin_headers, project.id, jsonl(judged, row("p2"), row("p3")))
    assert again.json() == {"imported": 1, "skipped": 2}
    assert counts(db)[0] == before[0] + 1
    assert counts(db)[2] == before[2]  # the judgment of the skipped p1 was skipped too
    assert post(client, admin_headers, project.id, first).json() == {"imported": 0, "skipped": 2}


def test_bom_crlf_blank_lines_and_gzip_are_read(client, db, admin_headers, project):
    body = b"\xef\xbb\xbf" + jsonl(row("p1")).replace(b"\n", b"\r\n") + b"\r\n\n" + jsonl(row("p2"))
    assert post(client, admin_headers, project.id, body).json() == {"imported": 2, "skipped": 0}
    zipped = gzip.compress(jsonl(row("p3"), row("p4")))
    assert post(client, admin_headers, project.id, zipped).json() == {"imported": 2, "skipped": 0}
    bad = gzip.compress(jsonl(row("p5"), row("p6", n=1)))
    assert problems(post(client, admin_headers, project.id, bad)) == [(2, "completions")]


def test_multipart_upload_and_csv_by_content_type(client, db, admin_headers, project):
    url = f"/api/v1/projects/{project.id}/import"
    files = {"file": ("prompts.jsonl", jsonl(row("m1")), "application/x-ndjson")}
    response = client.post(url, files=files, headers=admin_headers)
    assert response.json() == {"imported": 1, "skipped": 0}
    csv_body = b"id,prompt,completion_1,completion_2\nc1,q,a,b\n"
    response = client.post(
        url, content=csv_body, headers={**admin_headers, "Content-Type": "text/csv"}
    )
    assert response.json() == {"imported": 1, "skipped": 0}
    response = client.post(url, files={"nothing": ("x", b"")}, headers=admin_headers)
    assert problems(response) == [(None, "file")]


def test_unknown_format_and_bad_labeler_are_422(client, admin_headers, project):
    assert problems(post(client, admin_headers, project.id, jsonl(row()), "xml")) == [
        (None, "format")
    ]
    response = post(client, admin_headers, project.id, jsonl(row()), "pairs", labeler="alice")
    assert problems(response) == [(None, "labeler")]


def test_only_admins_import(client, db, make_user, token_for, project):
    labeler = make_user("labeler")
    before = counts(db)
    response = post(client, token_for(labeler), project.id, jsonl(row()))
    assert response.status_code == 403
    assert counts(db) == before


def test_unknown_project_is_404_and_archived_is_409(client, db, admin_headers):
    assert post(client, admin_headers, 999_999, jsonl(row())).status_code == 404
    archived = make_project(db, status="archived")
    response = post(client, admin_headers, archived.id, jsonl(row()))
    assert response.status_code == 409


# Values the COPY text format must escape (backslash, newline, carriage return, tab), its
# NULL and end-of-data markers as plain text, and characters it leaves alone.
AWKWARD = ["a\\b", "two\nlines", "cr\r\nlf", "tab\there", "\\N", "\\.", "é ✓ 𝄞", "\x0b\x0c", ""]


def test_texts_the_copy_format_escapes_are_stored_exactly(client, db, admin_headers, project):
    records = [
        {
            "id": f"p{i}\\\t{text}",
            "prompt": f"prompt {text}",
            "metadata": {text: text},
            "completions": [
                {"id": f"c\\{i}\t", "text": text, "model": f"m\\{text}", "metadata": {"k": text}},
                {"id": "plain", "text": f"{text}\\"},
            ],
        }
        for i, text in enumerate(AWKWARD)
    ]
    response = post(client, admin_headers, project.id, jsonl(*records))
    assert response.status_code == 200, response.text
    stored = {p.external_id: p for p in db.scalars(select(Prompt))}
    for i, text in enumerate(AWKWARD):
        prompt = stored[f"p{i}\\\t{text}"]
        assert (prompt.prompt, prompt.metadata_) == (f"prompt {text}", {text: text})
        query = select(Completion).where(Completion.prompt_id == prompt.id)
        completions = db.scalars(query.order_by(Completion.position)).all()
        assert [(c.external_id, c.text, c.model, c.metadata_) for c in completions] == [
            (f"c\\{i}\t", text, f"m\\{text}", {"k": text}),
            ("plain", f"{text}\\", None, {}),
        ]

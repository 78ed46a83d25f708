"""CSV and preference-pair imports, with real public rows where they are present
(Anthropic HH-RLHF transcripts, PandaLM's three-annotator comparisons)."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db.models import Completion, Judgment, Prompt, User
from app.domain.figures import prompt_figures
from app.services import importing
from tests.factories import make_project
from tests.helpers.imports import counts, jsonl, post, problems

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
HH = SHARED / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
PANDALM = SHARED / "data" / "pandalm" / "testset-v1.json"


@pytest.fixture
def project(db):
    return make_project(db, k=3)


def completions_of(db, external_id: str) -> dict[str, str]:
    prompt = db.scalar(select(Prompt).where(Prompt.external_id == external_id))
    rows = db.scalars(
        select(Completion).where(Completion.prompt_id == prompt.id).order_by(Completion.position)
    )
    return {c.external_id: c.text for c in rows}


def judgments_of(db, external_id: str) -> list[tuple[str, list]]:
    return (
        db.execute(
            select(User.username, Judgment.ranking)
            .join(Judgment, Judgment.labeler_id == User.id)
            .join(Prompt, Prompt.id == Judgment.prompt_id)
            .where(Prompt.external_id == external_id)
            .order_by(User.username)
        )
        .tuples()
        .all()
    )


def test_csv_with_ids_multiline_cells_and_gaps(client, db, admin_headers, project):
    body = (
        b"id,prompt,completion_1,completion_2,completion_3\n"
        b'q1,"Two\nlines",first,"second, with comma",third\n'
        b"q2,Short,a,,c\n"
    )
    response = post(client, admin_headers, project.id, body, "csv")
    assert response.json() == {"imported": 2, "skipped": 0}
    assert completions_of(db, "q1") == {
        "completion_1": "first",
        "completion_2": "second, with comma",
        "completion_3": "third",
    }
    assert completions_of(db, "q2") == {"completion_1": "a", "completion_3": "c"}
    assert db.scalar(select(Prompt.prompt).where(Prompt.external_id == "q1")) == "Two\nlines"


def test_csv_line_numbers_count_physical_lines(client, admin_headers, project):
    body = b'prompt,completion_1,completion_2\n"a\nb\nc",x,y\nlast,only\n'
    assert problems(post(client, admin_headers, project.id, body, "csv")) == [(5, "row")]


def test_csv_without_id_hashes_the_prompt_text(client, db, admin_headers, project):
    body = b"\xef\xbb\xbfPrompt,Completion_1,Completion_2\nHello?,a,b\nBye?,c,d\n"
    assert post(client, admin_headers, project.id, body, "csv").json() == {
        "imported": 2,
        "skipped": 0,
    }
    ids = db.scalars(select(Prompt.external_id).order_by(Prompt.id)).all()
    assert all(i.startswith("csv-") for i in ids) and len(set(ids)) == 2
    assert post(client, admin_headers, project.id, body, "csv").json() == {
        "imported": 0,
        "skipped": 2,
    }
    twice = b"prompt,completion_1,completion_2\nSame,a,b\nSame,c,d\n"
    response = post(client, admin_headers, project.id, twice, "csv")
    assert problems(response) == [(3, "prompt")]
    assert "add an id column" in response.json()["error"]["details"][0]["message"]


def test_csv_header_problems_are_all_named(client, admin_headers, project):
    body = b"prompt,prompt,completion_1,completion_12\nq,q,a,b\n"
    messages = [
        d["message"]
        for d in post(client, admin_headers, project.id, body, "csv").json()["error"]["details"]
    ]
    assert any("completion_12" in m for m in messages)
    assert any("appears twice" in m for m in messages)
    assert any("completion_2" in m for m in messages)


def test_pairs_with_prompt_become_a_judged_prompt(client, db, admin_headers, project):
    pair = {"id": "x1", "prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome."}
    response = post(client, admin_headers, project.id, jsonl(pair), "pairs", labeler="ext:trl")
    assert response.json() == {"imported": 1, "skipped": 0}
    assert completions_of(db, "x1") == {"chosen": "Paris.", "rejected": "Rome."}
    assert judgments_of(db, "x1") == [("ext:trl", [["chosen"], ["rejected"]])]
    prompt = db.scalar(select(Prompt).where(Prompt.external_id == "x1"))
    assert (prompt.n_judgments, prompt.target_labels) == (1, 3)


def test_conversational_pairs_split_on_shared_messages(client, db, admin_headers, project):
    user = {"role": "user", "content": "Hi"}
    pair = {
        "chosen": [user, {"role": "assistant", "content": "Hello!"}],
        "rejected": [user, {"role": "assistant", "content": "Go away."}],
    }
    explicit = {
        "prompt": [user],
        "chosen": [{"role": "assistant", "content": "Hey"}],
        "rejected": [{"role": "assistant", "content": "No"}],
    }
    body = jsonl(pair, explicit, pair)  # an identical pair again is the same record
    assert post(client, admin_headers, project.id, body, "pairs").json() == {
        "imported": 2,
        "skipped": 1,
    }
    prompts = db.scalars(select(Prompt).order_by(Prompt.id)).all()
    assert [p.prompt for p in prompts] == [[user], [user]]
    assert completions_of(db, prompts[0].external_id) == {
        "chosen": "Hello!",
        "rejected": "Go away.",
    }


def hh_rows(n: int) -> list[dict]:
    if not HH.exists():
        pytest.skip("shared HH-RLHF data is absent")
    with gzip.open(HH, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in itertools.islice(lines, n)]


def test_hh_transcripts_split_at_the_last_shared_assistant_turn(client, db, admin_headers, project):
    rows = hh_rows(40)
    response = post(client, admin_headers, project.id, jsonl(*rows), "pairs")
    assert response.json() == {"imported": 40, "skipped": 0}
    for prompt in db.scalars(select(Prompt)):
        texts = completions_of(db, prompt.external_id)
        assert prompt.prompt.startswith("\n\nHuman:") and prompt.prompt.endswith("Assistant:")
        original = {prompt.prompt + texts["chosen"], prompt.prompt + texts["rejected"]}
        assert original <= {r["chosen"] for r in rows} | {r["rejected"] for r in rows}
    again = post(client, admin_headers, project.id, jsonl(*rows), "pairs")
    assert again.json() == {"imported": 0, "skipped": 40}


def test_whole_hh_test_file_imports_gzipped(db, project):
    if not HH.exists():
        pytest.skip("shared HH-RLHF data is absent")
    with HH.open("rb") as stream:
        result = importing.import_file(db, project, stream, "pairs")
    assert result.imported + result.skipped == 2312 and result.imported > 2300
    # A reply that itself contains "Assistant:" stays whole (the split is at the shared part).
    texts = db.scalars(select(Completion.text).where(Completion.text.contains("Assistant:")))
    assert any(t for t in texts)


def pandalm_jsonl(n: int) -> bytes:
    """PandaLM comparisons in the import format: annotators 1..3 each give 0 (tie),
    1 (response 1 better) or 2 (response 2 better)."""
    if not PANDALM.exists():
        pytest.skip("shared PandaLM data is absent")
    outcome = {0: [["r1", "r2"]], 1: [["r1"], ["r2"]], 2: [["r2"], ["r1"]]}
    records = []
    for item in json.loads(PANDALM.read_text())[:n]:
        prompt = item["instruction"] + (f"\n\n{item['input']}" if item["input"] else "")
        models = item["cmp_key"].split("_")
        records.append(
            {
                "id": f"pandalm-{item['idx']}",
                "prompt": prompt,
                "metadata": {"source": "pandalm", "app": item["motivation_app"]},
                "completions": [
                    {"id": "r1", "text": item["response1"], "model": models[0]},
                    {"id": "r2", "text": item["response2"], "model": models[-1]},
                ],
                "judgments": [
                    {"labeler": f"ext:pandalm{a}", "ranking": outcome[item[f"annotator{a}"]]}
                    for a in (1, 2, 3)
                ],
            }
        )
    return jsonl(*records)


def test_pandalm_judgments_import_with_their_agreement(client, db, admin_headers, project):
    body = pandalm_jsonl(50)
    response = post(client, admin_headers, project.id, body)
    assert response.json() == {"imported": 50, "skipped": 0}
    assert counts(db)[2] >= 150
    for line in io.BytesIO(body):
        record = json.loads(line)
        prompt = db.scalar(select(Prompt).where(Prompt.external_id == record["id"]))
        rankings = [j["ranking"] for j in record["judgments"]]
        expected = prompt_figures(rankings, ["r1", "r2"])
        assert prompt.agreement == pytest.approx(expected["pairwise_agreement"])
        assert (prompt.n_judgments, prompt.slots_taken, prompt.target_labels) == (3, 3, 3)

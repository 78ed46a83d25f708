"""The export's fast path (issue 13): prompts looked up by their judgment pattern, rows
fetched as pre-encoded strings, the query without JIT and the GC kept off old objects; the
bytes stay those of ``pair_lines`` for ids and texts that could confuse the encoding."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.domain.pairs import JudgmentData, PromptData, pair_lines
from app.services import exports
from tests.helpers.judged import SMALL, seed_project


def test_export_gives_the_objects_it_froze_back_to_the_gc(db, settings, monkeypatch):
    project = seed_project(db, SMALL)
    frozen_during = []
    write = exports.write_pairs

    def watched(*args, **kwargs):
        frozen_during.append(gc.get_freeze_count())
        return write(*args, **kwargs)

    monkeypatch.setattr(exports, "write_pairs", watched)
    exports.create_export(db, settings, project)
    assert frozen_during[0] > 0 and gc.get_freeze_count() == 0
    monkeypatch.setattr(exports, "write_pairs", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        exports.create_export(db, settings, project)
    assert gc.get_freeze_count() == 0


def test_export_query_runs_without_jit(db, settings, monkeypatch):
    # SET LOCAL: for the export's transaction only (here a savepoint: not checkable after)
    project = seed_project(db, SMALL)
    during = []
    write = exports.write_pairs

    def watched(rows, *args, **kwargs):
        def tapped():
            for row in rows:
                during.append(db.scalar(text("SHOW jit")))
                yield row

        return write(tapped(), *args, **kwargs)

    monkeypatch.setattr(exports, "write_pairs", watched)
    exports.create_export(db, settings, project)
    assert set(during) == {"off"}


ODD_IDS = ['q"1', "x,y\x1f", "z\\w é"]  # quote, comma, the row separator, backslash


def _odd_record(n: int) -> dict[str, Any]:
    order = ODD_IDS[n % 3 :] + ODD_IDS[: n % 3]
    return {
        "id": f'p"{n}\x1f',
        "prompt": f'text \x1f {n} "q" \\ \n é 😀'
        if n % 4
        else [{"role": "user", "content": "Hi\x1f"}],
        "completions": [{"id": c, "text": f"{c} says \x1f\t{n}"} for c in ODD_IDS],
        "judgments": [
            {"labeler": "ext:x", "ranking": [[c] for c in order]},
            {"labeler": "ext:y", "ranking": [order[:2], order[2:]]},
        ],
    }


@pytest.mark.parametrize("strategy", ["consensus", "all"])
def test_odd_ids_and_texts_give_the_bytes_of_pair_lines(db, settings, strategy):
    records = [_odd_record(n) for n in range(8)]
    project = seed_project(db, records)
    export = exports.create_export(db, settings, project, strategy)
    expected = b"".join(
        pair_lines(
            PromptData(
                r["id"],
                r["prompt"],
                {c["id"]: c["text"] for c in r["completions"]},
                None,
                [JudgmentData(j["labeler"], j["ranking"]) for j in r["judgments"]],
            ),
            strategy,
        )
        for r in records
    )
    assert (Path(export.path) / exports.PAIRS_FILE).read_bytes() == expected
    assert export.manifest["counts"]["pairs"] == expected.count(b"\n") > 8

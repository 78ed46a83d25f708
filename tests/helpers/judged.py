"""Small projects of judged prompts, imported through the import service: ``SMALL`` (the
export tests compute its pairs by hand) and ``hand_project()`` (the agreement tests
compute its figures by hand)."""

from __future__ import annotations

import io
import json
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Project
from app.services import importing, projects


def ranking(*tiers: str) -> list[list[str]]:
    """``ranking("a", "bc")`` -> ``[["a"], ["b", "c"]]`` (one letter per completion)."""
    return [list(tier) for tier in tiers]


def prompt(pid: str, ids: str, judgments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An import record with completions ``ids`` (letters) and ``{labeler: ranking}``."""
    return {
        "id": pid,
        "prompt": extra.pop("text", f"Question {pid}?"),
        "completions": [{"id": c, "text": f"answer {c} of {pid}"} for c in ids],
        "judgments": [
            {"labeler": f"ext:{name}", "reject_all": True}
            if value == "reject"
            else {"labeler": f"ext:{name}", "ranking": value}
            for name, value in judgments.items()
        ],
        **extra,
    }


# Hand-checkable: see the expected pairs in tests/test_exports.py.
SMALL = [
    prompt(
        "p1",
        "abc",
        {"x": ranking("a", "b", "c"), "y": ranking("a", "c", "b"), "z": ranking("b", "a", "c")},
    ),
    prompt("p2", "ab", {"x": ranking("ab"), "y": ranking("a", "b")}),
    prompt(
        "p3",
        "ab",
        {"x": ranking("b", "a")},
        text=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    ),
    prompt("p4", "ab", {"x": ranking("a", "b")}, gold=ranking("a", "b")),
    prompt("p5", "ab", {"x": "reject", "y": ranking("a", "b")}),
]


def records_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def seed_project(
    db: Session, records: list[dict[str, Any]], name: str = "small", **settings: Any
) -> Project:
    """A project holding ``records``, imported through the import service."""
    project = projects.create_project(db, name, settings or None)
    importing.import_file(db, project, io.BytesIO(records_jsonl(records)), "jsonl")
    return project


A_B, B_A = ranking("a", "b"), ranking("b", "a")
# Outcome pairs (x, y) on 20 two-completion prompts: 10 x agree on a>b, 6 agree on b>a,
# 2 times x says a>b and y b>a, 2 times the reverse.
OUTCOMES = [(A_B, A_B)] * 10 + [(B_A, B_A)] * 6 + [(A_B, B_A)] * 2 + [(B_A, A_B)] * 2


def hand_project() -> list[dict[str, Any]]:
    """20 pairs judged by x and y, plus one 3-completion prompt: x a>b>c, y b>a>c.

    The prompt t17 (x says a>b, y says b>a) carries the gold ranking a>b.
    """
    records = []
    for n, (x, y) in enumerate(OUTCOMES):
        extra = {"gold": A_B} if n == 17 else {}
        records.append(prompt(f"t{n:02d}", "ab", {"x": x, "y": y}, **extra))
    records.append(prompt("w", "abc", {"x": ranking("a", "b", "c"), "y": ranking("b", "a", "c")}))
    return records

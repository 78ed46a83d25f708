"""Import files and requests for the import tests: records, their bytes, the answer."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.db.models import Completion, Judgment, Prompt, User

NDJSON = {"Content-Type": "application/x-ndjson"}


def row(pid: str = "p1", n: int = 2, **extra) -> dict:
    """A valid JSONL record with ``n`` completions a, b, c, …"""
    completions = [{"id": chr(97 + i), "text": f"reply {i}"} for i in range(n)]
    return {"id": pid, "prompt": f"question {pid}", "completions": completions, **extra}


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def counts(db) -> tuple[int, int, int, int]:
    return tuple(
        db.scalar(select(func.count()).select_from(model))
        for model in (Prompt, Completion, Judgment, User)
    )


def post(client, headers, project_id, body: bytes, fmt: str | None = None, **params):
    params = {"format": fmt, **params} if fmt else params
    return client.post(
        f"/api/v1/projects/{project_id}/import",
        content=body,
        params=params,
        headers={**NDJSON, **headers},
    )


def problems(response) -> list[tuple[int | None, str]]:
    assert response.status_code == 422, response.text
    return [(d["line"], d["field"]) for d in response.json()["error"]["details"]]

"""Import throughput: N synthetic prompts × M completions through the import service.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/import_bench.py --prompts 100000 --completions 3

Without DATABASE_URL it runs on the embedded PostgreSQL in DATA_DIR. It creates a
throw-away project, imports a generated JSONL file twice (the second time every prompt
is skipped), prints prompts/s and the process's peak memory, then deletes the project.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli.runtime import load_settings, open_db  # noqa: E402
from app.db.models import Project  # noqa: E402
from app.services import importing, projects  # noqa: E402


def write_file(path: Path, prompts: int, completions: int, judgments: int) -> None:
    """A JSONL file of synthetic prompts, written line by line."""
    ids = [chr(ord("a") + i) for i in range(completions)]
    with path.open("w", encoding="utf-8") as out:
        for n in range(prompts):
            row = {
                "id": f"bench-{n}",
                "prompt": f"Synthetic prompt number {n}: explain something in a few words.",
                "completions": [
                    {"id": cid, "text": f"Completion {cid} of prompt {n}. " * 8, "model": "bench"}
                    for cid in ids
                ],
                "metadata": {"n": n},
                "judgments": [
                    {"labeler": f"ext:bench{j}", "ranking": [[cid] for cid in ids[::-1]]}
                    for j in range(judgments)
                ],
            }
            out.write(json.dumps(row) + "\n")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=3)
    parser.add_argument("--judgments", type=int, default=0, help="external judgments a prompt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open_db(load_settings()) as sessions:
        path = Path(tmp) / "bench.jsonl"
        write_file(path, args.prompts, args.completions, args.judgments)
        size_mib = path.stat().st_size / 2**20
        print(f"file: {args.prompts} prompts × {args.completions} completions, {size_mib:.1f} MiB")
        print(f"peak RSS before the import: {peak_rss_mib():.0f} MiB")
        with sessions() as session:
            project = projects.create_project(session, f"bench-{uuid.uuid4().hex[:8]}")
            try:
                for label in ("first import", "re-import"):
                    start = time.perf_counter()
                    with path.open("rb") as stream:
                        result = importing.import_file(session, project, stream)
                    seconds = time.perf_counter() - start
                    print(
                        f"{label}: imported {result.imported}, skipped {result.skipped} in "
                        f"{seconds:.1f} s = {args.prompts / seconds:,.0f} prompts/s; "
                        f"peak RSS {peak_rss_mib():.0f} MiB"
                    )
            finally:
                session.delete(session.get(Project, project.id))
                session.commit()


if __name__ == "__main__":
    main()

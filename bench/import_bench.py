"""Import throughput: N synthetic prompts × M completions through the import service.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/import_bench.py --prompts 100000 --completions 3

Without DATABASE_URL it runs on the embedded PostgreSQL in DATA_DIR. It creates a
throw-away project, imports a generated JSONL file twice (the second time every prompt
is skipped), prints prompts/s, the CPU time spent by the importer and by PostgreSQL
(when it runs on this machine; on a busy machine the CPU times are the steadier
figures) and the process's peak memory, then deletes the project.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

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


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(backend_pid: int) -> float | None:
    """CPU time of the PostgreSQL backend serving us, when it runs on this machine."""
    stat = Path(f"/proc/{backend_pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_import(session, project, path: Path, backend_pid: int) -> str:
    """One import; wall rate, and CPU times (which a busy machine does not distort)."""
    server_before, cpu_before = server_cpu_seconds(backend_pid), own_cpu_seconds()
    start = time.perf_counter()
    with path.open("rb") as stream:
        result = importing.import_file(session, project, stream)
    seconds = time.perf_counter() - start
    client = own_cpu_seconds() - cpu_before
    server_after = server_cpu_seconds(backend_pid)
    n = result.imported + result.skipped
    line = (
        f"imported {result.imported}, skipped {result.skipped} in {seconds:.1f} s = "
        f"{n / seconds:,.0f} prompts/s; CPU: importer {client:.1f} s"
    )
    if server_before is not None and server_after is not None:
        server = server_after - server_before
        line += f", PostgreSQL {server:.1f} s"
    return line + f"; peak RSS {peak_rss_mib():.0f} MiB"


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
            backend_pid = session.scalar(text("SELECT pg_backend_pid()"))
            session.commit()
            try:
                for label in ("first import", "re-import"):
                    print(f"{label}: {timed_import(session, project, path, backend_pid)}")
            finally:
                session.delete(session.get(Project, project.id))
                session.commit()


if __name__ == "__main__":
    main()

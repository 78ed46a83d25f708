"""Benchmark: agreement figures and a streamed export on a large synthetic project.

Seeds a project straight in SQL (prompts x completions x judgments, rankings drawn
around a hidden true order so labelers mostly agree), then times

* ``load_table`` + project figures + CIs + per-labeler figures (the agreement API),
* ``create_export`` (consensus strategy) end to end from the database to a hashed
  ``pairs.jsonl`` (twice; the run of less CPU counts), with the peak resident memory,
  and between the two runs
* PostgreSQL's own ``COPY (SELECT row_to_json(t) FROM (<the export's query>) t) TO
  STDOUT`` of the same prompt rows, read and hashed by this process, once with the
  server's settings and once with the export's own (JIT off): the reference the
  export's rate is compared with (target: export rate >= 0.7x).

Wall time, this process's CPU time and the CPU time of the PostgreSQL backend serving
it (read from /proc when the server runs on this machine) are printed: on a busy
machine the CPU times are the fairer numbers. The project is deleted afterwards.
Usage (the second run writes about 1M pairs)::

    python -m bench.export_db_bench --url postgresql+psycopg://postgres@127.0.0.1/test \
        --prompts 100000 --completions 3 --judgments 3
    python -m bench.export_db_bench --url ... --prompts 170000 --completions 4 --skip-agreement
    python -m bench.export_db_bench --url ... --project 7   # an existing project, kept
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.db import migrate
from app.db.models import Project
from app.domain.figures import bootstrap_ci, project_figures
from app.domain.labeler_figures import labeler_figures
from app.services import agreement, exports, projects
from app.services.exports.stream import NO_JIT_SQL, PROMPTS_SQL
from app.settings import Settings

SEED_SQL = [
    """INSERT INTO prompts (project_id, external_id, prompt, target_labels, slots_taken,
                            n_judgments)
       SELECT :pid, 'p' || lpad(g::text, 8, '0'), to_jsonb('Prompt number ' || g || '?'),
              :j, :j, :j
       FROM generate_series(1, :n) g""",
    """INSERT INTO completions (prompt_id, external_id, position, text, metadata)
       SELECT p.id, chr(97 + c), c, 'Completion ' || chr(97 + c) || ' of ' || p.external_id,
              '{}'::jsonb
       FROM prompts p CROSS JOIN generate_series(0, :k - 1) c WHERE p.project_id = :pid""",
    """INSERT INTO users (username, role, is_active, is_external)
       SELECT 'ext:bench' || :tag || '_' || l, 'labeler', true, true
       FROM generate_series(1, :labelers) l""",
    # Each judgment picks one of the permutations; low indexes (near the true order a>b>...)
    # are likelier, so there is real but imperfect agreement.
    """INSERT INTO judgments (project_id, prompt_id, labeler_id, ranking, duration_ms,
                              display_order)
       SELECT :pid, p.id, u.id,
              (:perms)::jsonb -> (floor(power(random(), 3) * :nperms))::int,
              (2000 + random() * 60000)::int, (:order)::jsonb
       FROM prompts p
       CROSS JOIN LATERAL (
         SELECT id FROM users WHERE username LIKE 'ext:bench' || :tag || '\\_%'
         ORDER BY random() + p.id * 0 LIMIT :j) u
       WHERE p.project_id = :pid""",
]


def _seed(session: Session, project: Project, n: int, k: int, j: int, labelers: int) -> None:
    ids = [chr(97 + c) for c in range(k)]
    perms = [[[c] for c in perm] for perm in itertools.permutations(ids)]
    params = {
        "pid": project.id,
        "n": n,
        "k": k,
        "j": j,
        "labelers": labelers,
        "tag": uuid.uuid4().hex[:6],
        "perms": json.dumps(perms),
        "nperms": len(perms),
        "order": json.dumps(ids),
    }
    for sql in SEED_SQL:
        session.execute(text(sql), params)
    session.execute(text("ANALYZE prompts, completions, judgments, users"))
    session.commit()


def _backend_cpu(pid: int) -> float:
    """CPU seconds of a PostgreSQL backend of this machine (0 when it is elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """Wall time, this process's CPU and the session's PostgreSQL backend CPU of a step."""

    def __init__(self, backend_pid: int = 0) -> None:
        self.backend_pid = backend_pid
        self.wall = self.cpu = self.pg = 0.0

    def run(self, label: str, func: Callable[[], Any]) -> Any:
        start, cpu, pg = time.perf_counter(), time.process_time(), _backend_cpu(self.backend_pid)
        result = func()
        self.wall = time.perf_counter() - start
        self.cpu = time.process_time() - cpu
        self.pg = _backend_cpu(self.backend_pid) - pg
        print(f"{label:<36} wall {self.wall:7.2f} s   cpu {self.cpu:7.2f} s   pg {self.pg:7.2f} s")
        return result


def _timed(label: str, func: Callable[[], Any]) -> Any:
    return Clock().run(label, func)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _agreement(session: Session, project: Project) -> None:
    backend = session.scalar(text("SELECT pg_backend_pid()"))
    table = Clock(backend).run(
        "load_table (one query, columns)", lambda: agreement.load_table(session, project.id)
    )
    _timed("project figures", lambda: project_figures(table))
    _timed("bootstrap CIs (200 resamples)", lambda: bootstrap_ci(table))
    _timed("per-labeler figures", lambda: labeler_figures(table))
    clock = Clock(backend)
    clock.run("agreement_report (API, total)", lambda: agreement.agreement_report(session, project))
    print(f"agreement end to end: {clock.wall:.2f} s wall, CPU {clock.cpu + clock.pg:.2f} s")


def _copy_rows(session: Session, project_id: int, setup: str = "") -> str:
    """PostgreSQL's own JSON of the export's prompt rows, streamed here and hashed;
    ``setup`` runs first in the same transaction (e.g. the export's own settings)."""
    digest = hashlib.sha256()
    query = f"COPY (SELECT row_to_json(t) FROM ({PROMPTS_SQL}) t) TO STDOUT"
    query = query.replace("%(project_id)s", str(int(project_id)))
    driver = session.connection().connection.driver_connection
    if setup:
        driver.execute(setup)
    with driver.cursor() as cursor, cursor.copy(query) as copy:
        for data in copy:
            digest.update(data)
    session.rollback()
    return digest.hexdigest()


def _ratios(pairs: int, export: Clock, copy: Clock, label: str) -> None:
    e_cpu, c_cpu = export.cpu + export.pg, copy.cpu + copy.pg
    print(
        f"export rate / COPY rate ({label}): wall {copy.wall / export.wall:.2f}, "
        f"CPU {c_cpu / e_cpu:.2f} (target >= 0.7); COPY {pairs / copy.wall:,.0f} rows' pairs/s, "
        f"{c_cpu / pairs * 1e6:.2f} us CPU per pair"
    )


def _export(session: Session, project: Project, url: str) -> None:
    """The export end to end, then COPY of the same rows (with the server's settings and
    with the export's own), then the export again; rates and their ratios."""
    backend = session.scalar(text("SELECT pg_backend_pid()"))
    before = _rss_mib()
    clocks = [Clock(backend), Clock(backend)]
    copies = {"server settings": Clock(backend), "export's settings": Clock(backend)}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, data_dir=Path(tmp))
        for n, clock in enumerate(clocks):
            if n:  # COPY between the two exports: load drifts less between them
                for label, copy_clock in copies.items():
                    setup = "" if label == "server settings" else NO_JIT_SQL
                    copy_clock.run(
                        f"COPY (row_to_json), {label}",
                        lambda setup=setup: _copy_rows(session, project.id, setup),
                    )
            export = clock.run(
                "create_export (consensus)",
                lambda: exports.create_export(session, settings, project),
            )
        after = _rss_mib()
        path = Path(export.path) / exports.PAIRS_FILE
        size = path.stat().st_size
        with path.open("rb") as stream:
            sha = hashlib.file_digest(stream, "sha256").hexdigest()
    pairs = export.manifest["counts"]["pairs"]
    print(
        f"pairs {pairs:,}, {size / 2**20:.0f} MiB, sha256 {sha}; "
        f"peak RSS {before:.0f} -> {after:.0f} MiB"
    )
    best = min(clocks, key=lambda c: c.cpu + c.pg)
    print(
        f"export (the run of less CPU): {pairs / best.wall:,.0f} pairs/s wall, "
        f"CPU per pair {best.cpu / pairs * 1e6:.2f} us client + {best.pg / pairs * 1e6:.2f} us "
        f"PostgreSQL = {pairs / (best.cpu + best.pg):,.0f} pairs per CPU-second"
    )
    for label, copy_clock in copies.items():
        _ratios(pairs, best, copy_clock, label)


def _existing(session: Session, project_id: int, url: str) -> None:
    project = session.get(Project, project_id)
    if project is None:
        raise SystemExit(f"no project {project_id}")
    _export(session, project, url)
    session.execute(text("DELETE FROM exports WHERE project_id = :p"), {"p": project_id})
    session.commit()


def add_project_shape(parser: argparse.ArgumentParser) -> None:
    """The seeded project's size (also read by bench/agreement_db_bench.py)."""
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=3)
    parser.add_argument("--judgments", type=int, default=3)
    parser.add_argument("--labelers", type=int, default=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    add_project_shape(parser)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument(
        "--project", type=int, help="export this existing project instead (no seed, kept)"
    )
    args = parser.parse_args()
    engine = create_engine(args.url)
    migrate.upgrade(engine)
    if args.project:
        with Session(engine, expire_on_commit=False) as session:
            _existing(session, args.project, args.url)
        return
    with Session(engine, expire_on_commit=False) as session:
        project = projects.create_project(session, f"bench-{uuid.uuid4().hex[:8]}")
        try:
            _timed(
                "seed (SQL)",
                lambda: _seed(
                    session, project, args.prompts, args.completions, args.judgments, args.labelers
                ),
            )
            if not args.skip_agreement:
                _agreement(session, project)
            if not args.skip_export:
                _export(session, project, args.url)
        finally:
            session.rollback()
            session.delete(session.get(Project, project.id))
            session.execute(text("DELETE FROM users WHERE username LIKE 'ext:bench%'"))
            session.commit()
    engine.dispose()


if __name__ == "__main__":
    main()

"""Benchmark: the agreement API (SPEC §6) end to end from the database, 100k prompts x 3.

Seeds a project in SQL (``bench.export_db_bench``'s seeding: rankings drawn around a
hidden true order), or reuses one seeded earlier with ``--keep`` (seeding takes minutes
on a busy machine), then times

* ``agreement_report`` end to end (what ``GET /api/v1/projects/{id}/agreement`` computes),
* its parts: the query and loading into an OutcomeTable, the project figures, the
  bootstrap CIs and the per-labeler figures,
* two references of the same run, on the same judgment rows: PostgreSQL's own ``COPY``
  of them (the columns the figures need, as text, read by this process) and
  ``SELECT count(*)`` over them.

Each step prints wall time, this process's CPU time and the CPU time of the PostgreSQL
backend serving it (read from /proc when the server runs on this machine): on a busy
machine CPU times and same-run ratios are the fair figures. Parallel query is off unless
``--parallel`` (a parallel worker's CPU would not be counted). Usage::

    python -m bench.agreement_db_bench --url postgresql+psycopg://postgres@127.0.0.1/test \
        [--prompts 100000 --judgments 3 --completions 3] [--keep] [--repeat 3]
"""

from __future__ import annotations

import argparse
import uuid

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.db import migrate
from app.db.models import Project
from app.domain.figures import bootstrap_ci, project_figures, prompt_stats
from app.domain.labeler_figures import labeler_figures
from app.services import agreement, projects
from bench.export_db_bench import Clock, _seed, add_project_shape

COPY_SQL = """COPY (SELECT j.prompt_id, j.labeler_id, j.ranking, j.reject_all,
                          j.display_order, j.duration_ms
                   FROM judgments j WHERE j.project_id = {pid}) TO STDOUT"""
UNUSED_USERS_SQL = """DELETE FROM users u WHERE username LIKE 'ext:bench%'
  AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.labeler_id = u.id)"""
COUNT_SQL = "SELECT count(*) FROM judgments WHERE project_id = :pid"


def _project(session: Session, args: argparse.Namespace) -> tuple[Project, bool]:
    """The kept bench project of this size, or a new one seeded now (and whether it is)."""
    name = f"agreement-bench-{args.prompts}x{args.judgments}x{args.completions}"
    kept = session.scalar(select(Project).where(Project.name == name))
    if kept is not None:
        print(f"reusing project {kept.id} ({name})")
        return kept, False
    project = projects.create_project(session, name if args.keep else f"{name}-{uuid.uuid4()}")
    Clock().run(
        "seed (SQL)",
        lambda: _seed(
            session, project, args.prompts, args.completions, args.judgments, args.labelers
        ),
    )
    return project, True


def _copy(session: Session, project_id: int) -> int:
    size = 0
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(COPY_SQL.format(pid=int(project_id))) as copy:
        for data in copy:
            size += len(data)
    return size


def _round(session: Session, project: Project) -> tuple[Clock, Clock, Clock]:
    backend = session.scalar(text("SELECT pg_backend_pid()"))
    report = Clock(backend)
    report.run(
        "agreement_report (API, end to end)", lambda: agreement.agreement_report(session, project)
    )
    table = Clock(backend).run(
        "  query + load (load_table)", lambda: agreement.load_table(session, project.id)
    )
    Clock().run("  project figures (+ prompt stats)", lambda: project_figures(table))
    stats = prompt_stats(table)
    Clock().run("  bootstrap CIs (200 resamples)", lambda: bootstrap_ci(table, stats=stats))
    Clock().run("  per-labeler figures", lambda: labeler_figures(table))
    copy = Clock(backend)
    copy.run("reference: COPY of the judgment rows", lambda: _copy(session, project.id))
    count = Clock(backend)
    count.run(
        "reference: SELECT count(*) of them",
        lambda: session.scalar(text(COUNT_SQL), {"pid": project.id}),
    )
    return report, copy, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    add_project_shape(parser)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is summarised")
    parser.add_argument("--keep", action="store_true", help="keep the project for later runs")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="let PostgreSQL use parallel workers (their CPU is not counted)",
    )
    args = parser.parse_args()
    engine = create_engine(args.url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        project, fresh = _project(session, args)
        if not args.parallel:  # all of the server's work on the one backend measured
            session.execute(text("SET max_parallel_workers_per_gather = 0"))
        try:
            rounds = [_round(session, project) for _ in range(args.repeat)]
            report, copy, count = min(rounds, key=lambda r: r[0].cpu + r[0].pg)
            total = report.cpu + report.pg
            print(
                f"agreement end to end (best of {args.repeat} by CPU): {report.wall:.2f} s wall, "
                f"CPU {total:.2f} s (client {report.cpu:.2f} + PostgreSQL {report.pg:.2f})"
            )
            print(
                f"ratio to COPY of the judgment rows: wall {report.wall / copy.wall:.2f}x, "
                f"CPU {total / (copy.cpu + copy.pg):.2f}x; to count(*): wall "
                f"{report.wall / count.wall:.1f}x, "
                f"CPU {total / max(count.cpu + count.pg, 1e-3):.1f}x"
            )
        finally:
            session.rollback()
            if fresh and not args.keep:
                session.delete(session.get(Project, project.id))
                session.execute(text(UNUSED_USERS_SQL))
                session.commit()
    engine.dispose()


if __name__ == "__main__":
    main()

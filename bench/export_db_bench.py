"""Benchmark: agreement figures and a streamed export on a large synthetic project.

Seeds a project straight in SQL (prompts x completions x judgments, rankings drawn
around a hidden true order so labelers mostly agree), then times

* ``load_records`` + project figures + CIs + per-labeler figures (the agreement API),
* ``create_export`` (consensus strategy), with the peak resident memory it added.

Wall and CPU time are printed: on a busy machine the CPU time is the fairer number.
The project is deleted afterwards. Usage (the second run writes about 1M pairs)::

    python -m bench.export_db_bench --url postgresql+psycopg://postgres@127.0.0.1/test \
        --prompts 100000 --completions 3 --judgments 3
    python -m bench.export_db_bench --url ... --prompts 170000 --completions 4 --skip-agreement
"""

from __future__ import annotations

import argparse
import itertools
import json
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


def _timed(label: str, func: Callable[[], Any]) -> Any:
    """Run ``func``; print its wall time and this process's CPU time (robust to a busy box)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = func()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{label:<34} wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    return result


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _agreement(session: Session, project: Project) -> None:
    records = _timed(
        "load_records (one query)", lambda: agreement.load_records(session, project.id)
    )
    table = _timed("OutcomeTable.from_records", lambda: agreement.outcome_table(records))
    _timed("project figures", lambda: project_figures(table))
    _timed("bootstrap CIs (200 resamples)", lambda: bootstrap_ci(table))
    _timed("per-labeler figures", lambda: labeler_figures(table))
    _timed("agreement_report (API, total)", lambda: agreement.agreement_report(session, project))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=3)
    parser.add_argument("--judgments", type=int, default=3)
    parser.add_argument("--labelers", type=int, default=20)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    args = parser.parse_args()
    engine = create_engine(args.url)
    migrate.upgrade(engine)
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
                before = _rss_mib()
                with tempfile.TemporaryDirectory() as tmp:
                    settings = Settings(database_url=args.url, data_dir=Path(tmp))
                    export = _timed(
                        "create_export (consensus)",
                        lambda: exports.create_export(session, settings, project),
                    )
                    size = (Path(export.path) / exports.PAIRS_FILE).stat().st_size
                print(
                    f"pairs {export.manifest['counts']['pairs']:,}, {size / 2**20:.0f} MiB; "
                    f"peak RSS {before:.0f} -> {_rss_mib():.0f} MiB"
                )
        finally:
            session.rollback()
            session.delete(session.get(Project, project.id))
            session.execute(text("DELETE FROM users WHERE username LIKE 'ext:bench%'"))
            session.commit()
    engine.dispose()


if __name__ == "__main__":
    main()

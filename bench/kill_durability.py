"""Durability under kill -9 (issue 11, "keep it fixed"): every judgment the API acknowledged
(a 201 with its ``judgment_id``) is still in the database after the web server, or the
embedded PostgreSQL itself, was killed with SIGKILL while N labelers were busy; and no
prompt ever collects more than k judgments.

Everything runs on this machine: an embedded PostgreSQL in a scratch folder, a project with
enough prompts, N labelers (each their own token) looping ``tasks/next`` -> ``judgment``
against a ``uvicorn`` server. Each round lets them work, then SIGKILLs the server (or the
postmaster: the database's own crash recovery is part of what is checked) at a random
moment, starts what was killed again, and goes on. At the end it reads the judgments back
and prints, per kind of kill, the rounds, the judgments acknowledged, and how many of them
are missing (the figure that must be 0). Usage::

    python -m bench.kill_durability                         # 10 server kills, 3 database kills
    python -m bench.kill_durability --server-kills 3 --database-kills 1 --labelers 16
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text

from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from bench.labeling_load import api_call, bearer_headers, next_task_path, random_judgment, seed
from tests.helpers.live import start_server


@dataclass
class Acks:
    """Judgment ids the API acknowledged, and the failed calls, across the labelers."""

    ids: list[int] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _one_task(conn, project_id: int, token: str, rng: random.Random) -> int | None:
    """One next -> judgment; the acknowledged judgment id, or None (nothing left)."""
    headers = bearer_headers(token)
    status, raw = api_call(conn, "GET", next_task_path(project_id), headers)
    if status == 204:
        return None
    if status != 200:
        raise RuntimeError(f"next {status}")
    path, body = random_judgment(raw, rng)
    status, raw = api_call(conn, "POST", path, headers, body)
    if status != 201:
        raise RuntimeError(f"judgment {status}")
    return json.loads(raw)["judgment_id"]


def labeler(base: str, project_id: int, token: str, until: float, acks: Acks) -> None:
    """Loop until ``until``; a failed call (the server or database is being killed) is
    counted and retried on a new connection after a pause."""
    parts = urlsplit(base)
    rng = random.Random(token)
    while time.monotonic() < until:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            while time.monotonic() < until:
                done = _one_task(conn, project_id, token, rng)
                if done is None:
                    return
                with acks.lock:
                    acks.ids.append(done)
        except (OSError, RuntimeError, http.client.HTTPException) as exc:
            with acks.lock:
                acks.failures[type(exc).__name__ if isinstance(exc, OSError) else str(exc)] += 1
            time.sleep(0.2)
        finally:
            conn.close()


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def one_round(url: str, pgdata: Path, project_id: int, tokens: list[str], args, kill: str):
    """Labelers on a fresh server for ``--round-seconds``; SIGKILL of ``kill`` ('server' or
    'database') at a random moment in the middle of it. Returns the round's acks."""
    acks = Acks()
    with start_server(url) as server:
        until = time.monotonic() + args.round_seconds
        threads = [
            threading.Thread(target=labeler, args=(server.url, project_id, t, until, acks))
            for t in tokens
        ]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(0.3, 0.7) * args.round_seconds)
        victim = server.pid if kill == "server" else postmaster_pid(pgdata)
        os.kill(victim, signal.SIGKILL)
        for thread in threads:
            thread.join()
    return acks


def restart_database(data_dir: Path, database: EmbeddedPostgres) -> EmbeddedPostgres:
    """A new handle on the embedded server: it finds the dead postmaster and starts it again
    (PostgreSQL's crash recovery replays the WAL)."""
    database.stop()
    fresh = EmbeddedPostgres(data_dir, database="durability")
    fresh.start()
    return fresh


def check(url: str, acked: list[int], k: int) -> tuple[int, int, int]:
    """(acknowledged judgments missing from the database, judgments stored, prompts over k)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = set(conn.scalars(text("SELECT id FROM judgments")))
            over = conn.scalar(
                text(
                    "SELECT count(*) FROM (SELECT prompt_id FROM judgments GROUP BY prompt_id"
                    " HAVING count(*) > :k) AS o"
                ),
                {"k": k},
            )
    finally:
        engine.dispose()
    return len(set(acked) - stored), len(stored), int(over)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelers", type=int, default=32)
    parser.add_argument("--server-kills", type=int, default=10)
    parser.add_argument("--database-kills", type=int, default=3)
    parser.add_argument("--round-seconds", type=float, default=6.0)
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    kills = ["server"] * args.server_kills + ["database"] * args.database_kills
    with tempfile.TemporaryDirectory(prefix="prefloop-durability-") as tmp:
        data_dir = Path(tmp)
        database = EmbeddedPostgres(data_dir, database="durability")
        url = database.start()
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        project_id, tokens = seed(url, args.labelers, args.prompts, 3, args.k)
        acked: dict[str, list[int]] = {"server": [], "database": []}
        failures: Counter = Counter()
        for number, kill in enumerate(kills, start=1):
            acks = one_round(url, database.pgdata, project_id, tokens, args, kill)
            acked[kill] += acks.ids
            failures.update(acks.failures)
            if kill == "database":
                database = restart_database(data_dir, database)
            print(f"round {number:2d}: SIGKILL of the {kill}, {len(acks.ids)} acknowledged")
        missing = {kind: check(url, ids, args.k)[0] for kind, ids in acked.items()}
        _, stored, over = check(url, [], args.k)
        database.stop()
    for kind in ("server", "database"):
        rounds = kills.count(kind)
        print(
            f"SIGKILL of the {kind}: {rounds} rounds, {len(acked[kind])} judgments acknowledged,"
            f" {missing[kind]} missing after restart"
        )
    print(f"judgments stored {stored}; prompts over k={args.k}: {over}")
    print(f"failed calls while killed (retried): {dict(failures)}")
    if any(missing.values()) or over:
        raise SystemExit("DURABILITY FAILED")


if __name__ == "__main__":
    main()

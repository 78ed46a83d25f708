"""Import throughput: N synthetic prompts × M completions, through the import service
and through the HTTP API, against PostgreSQL's own COPY of the same rows.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/import_bench.py --prompts 100000 --completions 3

Without DATABASE_URL it runs on the embedded PostgreSQL in DATA_DIR. It writes a JSONL
file, then, each in a throw-away project:

* ``service``: ``importing.import_file`` called in this process, first import and
  re-import (every prompt skipped);
* ``api``: ``POST /api/v1/projects/{id}/import`` with the file streamed to a
  ``uvicorn`` server started for the run (``--no-api`` leaves it out);
* ``COPY``: the same prompt and completion rows, prepared in files beforehand, COPied
  straight into ``prompts`` and ``completions`` (same indexes, same foreign keys) in a
  transaction that is rolled back: what PostgreSQL alone needs to store them.

Each line gives prompts/s (wall), the CPU seconds of the importing process (this one,
or the server) and of its PostgreSQL backends (when the server runs on this machine),
and the importing process's peak RSS. On a busy machine the CPU times are the steadier
figures; the ratio to the COPY of the same run is what the wall rate means.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from app.cli.runtime import database_url, load_settings, open_db  # noqa: E402
from app.db.models import Project  # noqa: E402
from app.services import importing, projects  # noqa: E402
from app.services.accounts import tokens, users  # noqa: E402
from app.services.importing.copy_rows import copy_line  # noqa: E402

APP_NAME = "prefloop-import-bench"


def record(n: int, ids: list[str], judgments: int) -> dict:
    return {
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


def write_files(tmp: Path, prompts: int, completions: int, judgments: int, project: int) -> None:
    """bench.jsonl, and the same rows as COPY text for prompts and completions."""
    ids = [chr(ord("a") + i) for i in range(completions)]
    with (
        (tmp / "bench.jsonl").open("w", encoding="utf-8") as out,
        (tmp / "prompts.copy").open("w", encoding="utf-8") as p_out,
        (tmp / "completions.copy").open("w", encoding="utf-8") as c_out,
    ):
        for n in range(prompts):
            row = record(n, ids, judgments)
            out.write(json.dumps(row) + "\n")
            prompt, meta = json.dumps(row["prompt"]), json.dumps(row["metadata"])
            k = max(3, judgments)
            cells = (-n - 1, project, row["id"], prompt, meta, False, k, judgments, judgments)
            p_out.write(copy_line(cells))
            for pos, c in enumerate(row["completions"]):
                c_out.write(copy_line((-n - 1, c["id"], pos, c["text"], "bench", "{}")))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time of a process of this machine (None when it is elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends_cpu(session) -> float | None:
    """CPU time of the PostgreSQL backends of the bench server (application_name)."""
    pids = session.scalars(
        text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
        {"name": APP_NAME},
    ).all()
    session.rollback()  # pg_stat_activity holds one snapshot per transaction
    times = [process_cpu_seconds(pid) for pid in pids]
    return None if any(t is None for t in times) else sum(times)


def figures(n: int, seconds: float, client: float, server: float | None, rss: float) -> str:
    line = f"{n:,} in {seconds:.1f} s = {n / seconds:,.0f} prompts/s; CPU: importer {client:.1f} s"
    if server is not None:
        line += f", PostgreSQL {server:.1f} s"
        # the rate the CPU times allow: with a core each (the two overlap), with one core
        line += f" (CPU-bound: {n / max(client, server, 1e-9):,.0f} prompts/s on two cores,"
        line += f" {n / (client + server):,.0f} on one)"
    return line + f"; peak RSS {rss:.0f} MiB"


def service_import(session, project, path: Path, backend_pid: int) -> tuple[float, str]:
    server_before, cpu_before = process_cpu_seconds(backend_pid), own_cpu_seconds()
    start = time.perf_counter()
    with path.open("rb") as stream:
        result = importing.import_file(session, project, stream)
    seconds = time.perf_counter() - start
    server_after = process_cpu_seconds(backend_pid)
    server = None if server_after is None else server_after - server_before
    n = result.imported + result.skipped
    counts = f"imported {result.imported}, skipped {result.skipped}: "
    rss = peak_rss_mib()
    line = counts + figures(n, seconds, own_cpu_seconds() - cpu_before, server, rss)
    return (n / seconds, server), line


COPY_COLUMNS = {
    "prompts": "id, project_id, external_id, prompt, metadata, is_gold, target_labels, "
    "slots_taken, n_judgments",
    "completions": "prompt_id, external_id, position, text, model, metadata",
}


def reference_copy(session, tmp: Path, backend_pid: int) -> tuple[float, str]:
    """PostgreSQL's own COPY of the prepared rows into the real tables, rolled back."""
    driver = session.connection().connection.driver_connection
    server_before, start = process_cpu_seconds(backend_pid), time.perf_counter()
    with driver.cursor() as cursor:
        for table, columns in COPY_COLUMNS.items():
            sql = f"COPY {table} ({columns}) FROM STDIN"
            with (tmp / f"{table}.copy").open("rb") as src, cursor.copy(sql) as copy:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
        rows = cursor.execute("SELECT count(*) FROM prompts WHERE id < 0").fetchone()[0]
    seconds = time.perf_counter() - start
    server_after = process_cpu_seconds(backend_pid)
    session.rollback()
    server = None if server_after is None else server_after - server_before
    line = f"{rows:,} in {seconds:.1f} s = {rows / seconds:,.0f} prompts/s"
    if server is not None:
        line += f"; CPU: PostgreSQL {server:.1f} s (CPU-bound: {rows / server:,.0f} prompts/s)"
    return (rows / seconds, server), line


def _wait_for(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the bench server exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the bench server did not start")


def start_server(url: str, tmp: Path, port: int) -> subprocess.Popen:
    """uvicorn on the app, its database connections named APP_NAME."""
    sep = "&" if "?" in url else "?"
    env = {**os.environ, "DATABASE_URL": f"{url}{sep}application_name={APP_NAME}"}
    env.update(DATA_DIR=str(tmp / "data"), DB_POOL_SIZE="2", LOG_LEVEL="warning")
    command = [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory"]
    command += ["--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parents[1])
    _wait_for(port, server)
    return server


def server_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def api_import(session, server, port: int, token: str, project_id: int, path: Path):
    """One import through the HTTP API, the file streamed as the request body."""
    pg_before, cpu_before = backends_cpu(session), process_cpu_seconds(server.pid)
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    headers["Content-Length"] = str(path.stat().st_size)
    with path.open("rb") as body:
        conn.request("POST", f"/api/v1/projects/{project_id}/import", body, headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
    seconds = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"the API import failed: {response.status} {answer}")
    pg_after, cpu_after = backends_cpu(session), process_cpu_seconds(server.pid)
    pg = None if pg_before is None or pg_after is None else pg_after - pg_before
    n = answer["imported"] + answer["skipped"]
    counts = f"imported {answer['imported']}, skipped {answer['skipped']}: "
    rss = server_rss_mib(server.pid)
    return (n / seconds, pg), counts + figures(n, seconds, cpu_after - cpu_before, pg, rss)


def run_api(sessions, url: str, tmp: Path, port: int) -> list[tuple[str, float, str]]:
    with sessions() as session:
        project = projects.create_project(session, f"bench-api-{uuid.uuid4().hex[:8]}")
        admin = f"bench-admin-{uuid.uuid4().hex[:8]}"
        users.create_user(session, admin, uuid.uuid4().hex, "admin")
        token = tokens.create_token(session, admin)
        session.commit()
        server = start_server(url, tmp, port)
        try:
            path = tmp / "bench.jsonl"
            out = []
            for label in ("api first import", "api re-import"):
                rate, line = api_import(session, server, port, token, project.id, path)
                session.commit()
                out.append((label, rate, line))
            return out
        finally:
            server.terminate()
            server.wait(30)
            session.delete(session.get(Project, project.id))
            session.execute(text("DELETE FROM users WHERE username = :u"), {"u": admin})
            session.commit()


def run_service(session, tmp: Path) -> list[tuple[str, float, str]]:
    project = projects.create_project(session, f"bench-{uuid.uuid4().hex[:8]}")
    backend_pid = session.scalar(text("SELECT pg_backend_pid()"))
    session.commit()
    out = []
    try:
        for label in ("service first import", "service re-import"):
            rate, line = service_import(session, project, tmp / "bench.jsonl", backend_pid)
            out.append((label, rate, line))
            print(f"{label}: {line}", flush=True)
    finally:
        session.delete(session.get(Project, project.id))
        session.commit()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=3)
    parser.add_argument("--judgments", type=int, default=0, help="external judgments a prompt")
    parser.add_argument("--no-api", action="store_true", help="leave out the HTTP API run")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    settings = load_settings()
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        database_url(settings) as url,
        open_db(settings.model_copy(update={"database_url": url})) as sessions,
        sessions() as session,
    ):
        tmp = Path(tmp_name)
        reference = projects.create_project(session, f"bench-copy-{uuid.uuid4().hex[:8]}")
        session.commit()
        try:
            write_files(tmp, args.prompts, args.completions, args.judgments, reference.id)
            size_mib = (tmp / "bench.jsonl").stat().st_size / 2**20
            print(
                f"file: {args.prompts} prompts × {args.completions} completions, "
                f"{args.judgments} judgments each, {size_mib:.1f} MiB"
            )
            print(f"peak RSS before the import: {peak_rss_mib():.0f} MiB", flush=True)
            results = run_service(session, tmp)
            if not args.no_api:
                for label, rate, line in run_api(sessions, url, tmp, args.port):
                    results.append((label, rate, line))
                    print(f"{label}: {line}", flush=True)
            ref_pid = session.scalar(text("SELECT pg_backend_pid()"))
            copy_rate, line = reference_copy(session, tmp, ref_pid)
            print(f"PostgreSQL COPY of the same prompts and completions: {line}")
        finally:
            session.rollback()
            session.delete(session.get(Project, reference.id))
            session.commit()
        for label, (rate, pg), _ in results:
            line = f"{label} / COPY: wall rate {rate / copy_rate[0]:.2f}×"
            if pg is not None and copy_rate[1]:
                line += f", PostgreSQL CPU {pg / copy_rate[1]:.2f}×"
            print(line)


if __name__ == "__main__":
    main()

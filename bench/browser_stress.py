"""The browser suite, run again and again while a busy loop holds one of the cores.

Browser tests must wait on the state they check, never on timing; this is how we find the
ones that do not. Each round runs ``pytest -m browser`` in a fresh process; a bounded busy
loop (``python -c 'while True: pass'`` under ``timeout``) takes one core for the whole run
and is stopped at the end, whatever happened.

    python bench/browser_stress.py             # 5 rounds, one core held
    python bench/browser_stress.py --rounds 3 --busy 0

Prints each round's pytest summary line, then ``rounds, failures`` and the exit is non-zero
when any round failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY_LOOP = "while True: pass"
SUMMARY = re.compile(r"^=* ?(\d+ (passed|failed|error).*?) ?=*$")


def start_busy(cores: int, limit_s: int) -> list[subprocess.Popen]:
    """``cores`` CPU-bound processes that end by themselves after ``limit_s`` seconds."""
    cmd = ["timeout", str(limit_s), sys.executable, "-c", BUSY_LOOP]
    return [subprocess.Popen(cmd) for _ in range(cores)]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)


def run_round(pytest_args: list[str], log: Path) -> tuple[int, str]:
    """One pytest run of the browser tests: its exit code and its summary line."""
    cmd = [sys.executable, "-m", "pytest", "-m", "browser", "-q", "-p", "no:cacheprovider"]
    with log.open("w") as out:
        code = subprocess.call(cmd + pytest_args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    lines = log.read_text(errors="replace").splitlines()
    summary = next((m.group(1) for m in map(SUMMARY.match, reversed(lines)) if m), "no summary")
    return code, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", type=int, default=1, help="cores held by busy loops")
    parser.add_argument("--limit", type=int, default=3600, help="busy loops end after (s)")
    parser.add_argument("--logs", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    args, pytest_args = parser.parse_known_args()
    busy = start_busy(args.busy, args.limit)
    failures = 0
    try:
        for i in range(1, args.rounds + 1):
            started = time.monotonic()
            log = args.logs / f"browser_stress_{i}.log"
            code, summary = run_round(pytest_args, log)
            failures += code != 0
            took = time.monotonic() - started
            print(f"round {i}: exit {code}, {summary} ({took:.0f} s, log {log})", flush=True)
    finally:
        stop(busy)
    print(f"rounds {args.rounds}, failures {failures}, cores held busy {args.busy}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

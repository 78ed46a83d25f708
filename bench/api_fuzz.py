"""Schema-driven fuzzing of the whole API at full strength (issue 11): schemathesis with 50
examples per operation (all phases: examples, coverage, fuzzing, stateful), once with an
admin token and once with a labeler token, against a live server on a scratch database.

Prints the failures found, by check and by operation: every check, as tests/test_api_fuzz.py
enforces them (no server error, every answer as documented, schema-valid bodies accepted and
schema-invalid ones refused, a created resource found), with the per-operation settings of
tests/helpers/schemathesis.toml. The request checks are counted apart too::

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python bench/api_fuzz.py --examples 50 --max-time 300
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.fuzz import fuzz, seed  # noqa: E402
from tests.helpers.live import start_server  # noqa: E402
from tests.helpers.pg import DatabaseFactory, server_url  # noqa: E402

REQUEST_CODES = ("ST201", "ST202", "ST302")
"""Accepted schema-invalid data, rejected schema-valid data, created resource not found (the
checks the test did not enforce before issue 11's schemas)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--max-time", type=int, default=300, help="seconds per role and pass")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with server_url() as admin_url:
        databases = DatabaseFactory(admin_url)
        try:
            url = databases.new()
            tokens = seed(url)
            started = time.monotonic()
            with start_server(url) as server:
                results = fuzz(
                    server.url,
                    tokens,
                    max_examples=args.examples,
                    seed_value=args.seed,
                    max_time=args.max_time,
                    exclude=(),
                )
        finally:
            databases.drop_all()
    total: Counter = Counter()
    for result in results:
        total.update(result.failures)
        print(
            f"{result.role}: {result.tested} operations, {result.cases} test cases, "
            f"{result.total} unique failures {dict(result.failures)}"
        )
        for operation, count in sorted(result.operations.items()):
            print(f"    {operation}: {count}")
    request = sum(n for name, n in total.items() if name.startswith(REQUEST_CODES))
    print(f"test cases: {sum(r.cases for r in results)}")
    print(f"failures by check: {dict(total)}")
    print(f"server errors and answer violations: {sum(total.values()) - request}")
    print(f"request checks (schema-valid accepted, invalid refused, created found): {request}")
    print(f"seconds: {time.monotonic() - started:.0f}")


if __name__ == "__main__":
    main()

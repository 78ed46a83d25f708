"""Schema-driven fuzzing of the API (issue 11): schemathesis's ``st run`` against a live
server, once with an admin token and once with a labeler token, on a seeded database.

``fuzz(server, tokens, ...)`` runs it and returns one ``FuzzResult`` per role with the
failures found, by check. Used by tests/test_api_fuzz.py (bounded, part of ``make test``)
and bench/api_fuzz.py (fuller)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.services.accounts import tokens, users
from tests.factories import make_project, make_prompts

CHECKS = ("all",)
"""Every check schemathesis has: no 5xx, every answer as documented (status, content type,
headers, body, the Allow header of a 405, 401 without credentials, …), schema-valid bodies
accepted and schema-invalid ones refused, a created resource found."""
CONFIG = Path(__file__).with_name("schemathesis.toml")
"""The answers that depend on the data, by operation (each with its reason)."""
PASSWORD = "fuzz-password-0123"


@dataclass
class FuzzResult:
    role: str
    exit_code: int
    failures: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    output: str = ""
    cases: int = 0  # test cases generated (the summary's "N generated")
    tested: int = 0  # operations tested (the summary's "Tested: N")

    @property
    def total(self) -> int:
        return sum(self.failures.values())


def seed(database_url: str) -> dict[str, str]:
    """An admin and a labeler (member of a project with prompts); their tokens by role."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as db:
            admin = users.create_user(db, "fuzz-admin", PASSWORD, "admin")
            labeler = users.create_user(db, "fuzz-labeler", PASSWORD, "labeler")
            project = make_project(db, members=[labeler], name="fuzz")
            make_prompts(db, project, 20)
            return {
                "admin": tokens.create_token(db, admin.username, "fuzz"),
                "labeler": tokens.create_token(db, labeler.username, "fuzz"),
            }
    finally:
        engine.dispose()


_FAILURE = re.compile(r"^\s*❌\s+(ST\d+ [^:]+): (\d+)\s*$")
_CASES = re.compile(r"^\s*(\d+) generated\b")
_TESTED = re.compile(r"^\s*Tested: (\d+)\s*$")


def _read_failures(output: str, result: FuzzResult) -> None:
    """The summary's ``❌ ST205 Allow header mismatch: 4`` lines, the operations named
    above each failure, and how many operations and test cases ran."""
    operation = None
    for line in output.splitlines():
        if cases := _CASES.match(line):
            result.cases += int(cases.group(1))
        elif tested := _TESTED.match(line):
            result.tested += int(tested.group(1))
        elif found := _FAILURE.match(line):
            result.failures[found.group(1)] += int(found.group(2))
        elif header := re.match(r"^_{3,} (.+?) _{3,}$", line.strip()):
            operation = header.group(1)
        elif operation and line.strip().startswith("- ST"):
            result.operations[operation] += 1


def run_role(
    url: str,
    role: str,
    token: str,
    *,
    max_examples: int,
    seed_value: int,
    max_time: int,
    checks: tuple[str, ...] = CHECKS,
    exclude: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> FuzzResult:
    with tempfile.TemporaryDirectory(prefix="prefloop-fuzz-") as tmp:
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/api/v1/openapi.json",
            "--checks",
            ",".join(checks),
            *(("--exclude-checks", ",".join(exclude)) if exclude else ()),
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            str(max_examples),
            "--seed",
            str(seed_value),
            "--max-time",
            str(max_time),
            "--workers",
            "1",
            "--continue-on-failure",
            "--suppress-health-check",
            "all",
            "--warnings",
            "off",
            *extra,
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=tmp, env=_env()
        )
    result = FuzzResult(role, done.returncode, output=done.stdout + done.stderr)
    _read_failures(result.output, result)
    return result


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}


CREDENTIAL_OPERATIONS = r"^/api/v1/(tokens/\{token_id\}|users/\{user_id\}/deactivate)$"
"""Revoking a token or deactivating a user may hit the fuzzer's own credentials: these run
last, after every other operation has been fuzzed by both roles."""


def fuzz(
    url: str,
    tokens_by_role: dict[str, str],
    *,
    max_examples: int,
    seed_value: int = 1,
    max_time: int = 60,
    exclude: tuple[str, ...] = (),
) -> list[FuzzResult]:
    """Every operation with each role's token, then the credential operations."""
    results = []
    for last in (False, True):
        flag = "--include-path-regex" if last else "--exclude-path-regex"
        for role in ("labeler", "admin"):
            result = run_role(
                url,
                role,
                tokens_by_role[role],
                max_examples=max_examples,
                seed_value=seed_value,
                max_time=max(10, max_time // 4) if last else max_time,
                exclude=exclude,
                extra=(flag, CREDENTIAL_OPERATIONS),
            )
            result.role = f"{role} ({'credential operations' if last else 'the rest'})"
            results.append(result)
    return results

"""Keep it fixed (issue 11): schemathesis fuzzes every API operation of a live server with
an admin token and a labeler token (fixed seed, bounded in time): no answer is a server
error, every answer (status, content type, headers, body, the Allow header of a 405, 401
without credentials) is the one the served OpenAPI document declares, schema-valid bodies
are accepted and schema-invalid ones refused, and a created resource is found (what depends
on the data is listed per operation in tests/helpers/schemathesis.toml).
bench/api_fuzz.py runs the same at full strength."""

from __future__ import annotations

from tests.helpers.fuzz import fuzz, seed
from tests.helpers.live import start_server


def test_fuzzing_every_operation_finds_no_server_error_and_no_schema_violation(databases):
    url = databases.new()
    tokens = seed(url)
    with start_server(url) as server:
        results = fuzz(server.url, tokens, max_examples=8, max_time=25)
    for result in results:
        assert result.tested > 0 and result.cases > 0, result.output[-4000:]  # it ran
        assert result.total == 0 and result.exit_code == 0, (
            f"{result.role}: {dict(result.failures)} on {dict(result.operations)}\n"
            + result.output[-4000:]
        )

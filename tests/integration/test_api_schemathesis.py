"""Property-based API test: schemathesis generates requests for every operation of
/api/v1/openapi.json and sends them in-process (WSGI) with a quality lead's bearer token.

No response may be a server error, and responses must use the status codes, content types and
body schemas the document declares. Bounded (a few examples per operation, derandomized) so it
stays well under a minute; SQLite only (the API code is the same on PostgreSQL).
"""

from __future__ import annotations

import pytest
import schemathesis
from alembic import command
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from storage.migrate import alembic_config
from tests.integration.conftest import start_review, token

EXAMPLES = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_every_operation_without_server_errors(app, client, db, runtime, complaint_process):
    # the test database is built by create_all; mark it as migrated so /readyz answers 200, not 503
    command.stamp(alembic_config(db.url), "head")
    start_review(runtime, "C-S1")
    headers = token(client, "lena.lead")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    failures: list[str] = []

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):  # type: ignore[no-untyped-def]
            case.headers = {**(case.headers or {}), **headers}
            response = case.call()
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)

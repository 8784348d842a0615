"""/engine-rest/openapi.json documents every /engine-rest route and method, and is valid OpenAPI 3."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from engine import external_tasks
from engine.accounts import save_user
from tests.integration.conftest import PASSWORD, lead_actor

MODELS = Path(__file__).parents[1] / "constructs" / "models"


def test_every_engine_rest_route_is_documented(app, client):
    response = client.get("/engine-rest/openapi.json")  # public, like /api/v1/openapi.json
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": "/engine-rest"}]
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("engine_rest."):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix("/engine-rest"))
            path = path.replace("{task_id}", "{id}").replace("{instance_id}", "{id}").replace("{definition_id}", "{id}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_every_operation_without_server_errors(app, db, runtime, monkeypatch):
    """schemathesis sends generated requests for every documented operation (as a worker): no 500s,
    only documented status codes and content types."""
    monkeypatch.setattr(external_tasks, "MAX_WAIT", timedelta(milliseconds=50))  # generated long polls
    save_user(db, "erp.worker", "worker", password=PASSWORD)
    runtime.deploy_paths([MODELS / "xt_order_lookup.bpmn", MODELS / "xt_credit_note.bpmn"])
    for key in ("xt_order_lookup", "xt_credit_note"):
        runtime.start(key, {"order": "A-1"}, lead_actor(), business_key="C-1")
    auth = {"Authorization": "Basic " + base64.b64encode(f"erp.worker:{PASSWORD}".encode()).decode()}
    schema = schemathesis.openapi.from_wsgi("/engine-rest/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):  # type: ignore[no-untyped-def]
            case.headers = {**(case.headers or {}), **auth}
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     content_type_conformance])

        try:
            run()
        except Exception as exc:  # every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)

"""Failing scripts, expressions and assignments become incidents; a lead retries after the fix."""

from __future__ import annotations

import pytest

from engine.errors import InvalidStateError, PermissionDeniedError
from tests.fixtures.runtime.helpers import HERE as FIXTURES_RUNTIME
from tests.fixtures.runtime.helpers import LEAD, REVIEWER, add_users, audit_rows, deploy, only_open


def test_script_error_on_start_is_an_incident_not_an_exception(runtime):
    deploy(runtime, "start_script")
    instance = runtime.start("rt_start_script", {"reference": "C-7"}, LEAD)
    assert instance.status == "incident"
    [incident] = instance.incidents
    assert "ZeroDivisionError" in incident.message and "division by zero" in incident.message
    assert incident.task_name == "Divide" and incident.task_id is not None
    assert incident.data["reference"] == "C-7"
    assert incident.resolved_at is None
    types = [a.type for a in instance.audit]
    assert types == ["start", "incident"]
    assert instance.audit[-1].payload["task"] == "Divide"
    # retrying without fixing the cause opens a new incident, the old one is resolved
    again = runtime.retry(instance.id, LEAD)
    assert again.status == "incident"
    assert [i.resolved_at is not None for i in again.incidents] == [True, False]


def test_script_error_on_complete_then_retry_with_fixed_data(runtime):
    deploy(runtime, "script")
    instance = runtime.start("rt_script", {}, LEAD)
    task = only_open(instance)
    instance = runtime.complete(task.id, REVIEWER, {"divisor": "0"})  # no exception escapes
    assert instance.status == "incident"
    [incident] = instance.incidents
    assert "ZeroDivisionError" in incident.message and incident.task_name == "Calculate"
    assert incident.data["divisor"] == 0
    # the human task is done; nothing is open while the incident waits
    assert [t.state for t in instance.tasks] == ["completed"]
    with pytest.raises(PermissionDeniedError):
        runtime.retry(instance.id, REVIEWER, {"divisor": 4})
    # fix one cause: the next line then fails on an undefined name -> a new incident
    instance = runtime.retry(instance.id, LEAD, {"divisor": 4})
    assert instance.status == "incident"
    assert "bonus" in instance.incidents[-1].message
    instance = runtime.retry(instance.id, LEAD, {"bonus": 1})
    assert instance.status == "completed" and instance.ended_at is not None
    assert instance.data["ratio"] == 25 and instance.data["total"] == 26
    assert all(i.resolved_at is not None for i in instance.incidents)
    types = [a.type for a in instance.audit]
    assert types == ["start", "task_created", "complete", "incident", "retry", "incident", "retry", "end"]
    retry = [a for a in instance.audit if a.type == "retry"][-1]
    assert retry.actor == LEAD.username and retry.payload == {"data": {"bonus": 1}}


def test_undefined_name_in_script(runtime):
    deploy(runtime, "script")
    instance = runtime.start("rt_script", {}, LEAD)
    instance = runtime.complete(only_open(instance).id, REVIEWER, {"divisor": 5})
    assert instance.status == "incident"
    assert "NameError" in instance.incidents[0].message and "bonus" in instance.incidents[0].message
    instance = runtime.retry(instance.id, LEAD, {"bonus": 2})
    assert instance.status == "completed" and instance.data["total"] == 22


def test_retry_without_open_incident_is_invalid(runtime):
    deploy(runtime, "script")
    instance = runtime.start("rt_script", {}, LEAD)
    with pytest.raises(InvalidStateError):
        runtime.retry(instance.id, LEAD)
    assert runtime.instance(instance.id).status == "running"


def test_failing_assignee_expression_is_an_incident(runtime):
    add_users(runtime, "olga.owner")
    deploy(runtime, "bad_assignee")
    instance = runtime.start("rt_bad_assignee", {}, LEAD)
    assert instance.status == "incident"
    [incident] = instance.incidents
    assert "camunda:assignee" in incident.message and "owner" in incident.message
    assert incident.task_name == "Owner acts"
    assert instance.tasks == []  # no unassignable task in anyone's inbox
    instance = runtime.retry(instance.id, LEAD, {"owner": "olga.owner"})
    assert instance.status == "running"
    task = only_open(instance)
    assert task.assignee == "olga.owner" and task.state == "claimed"
    olga = type(LEAD)("olga.owner")
    instance = runtime.complete(task.id, olga, {})
    assert instance.status == "completed"


def test_gateway_condition_error_is_an_incident(runtime):
    deploy(runtime, "gateway")
    instance = runtime.start("rt_gateway", {}, LEAD)
    assert instance.status == "incident"
    [incident] = instance.incidents
    assert "amount" in incident.message and incident.task_name == "Big?"
    instance = runtime.retry(instance.id, LEAD, {"amount": 500})
    assert instance.status == "running"
    assert only_open(instance).name == "Big"
    assert [a.type for a in audit_rows(runtime, instance.id)] == [
        "start", "incident", "retry", "task_created"]


def test_incident_message_names_the_line_once(runtime):
    deploy(runtime, "start_script")
    instance = runtime.start("rt_start_script", {}, LEAD)
    message = instance.incidents[0].message
    assert message.count("line 1") == 1 and "x = 1 / 0" in message


def test_cancel_resolves_open_incidents_and_retry_is_then_invalid(runtime):
    deploy(runtime, "start_script")
    instance = runtime.start("rt_start_script", {}, LEAD)
    instance = runtime.cancel(instance.id, LEAD, "cannot be fixed")
    assert instance.status == "cancelled"
    assert all(i.resolved_at is not None for i in instance.incidents)
    with pytest.raises(InvalidStateError):
        runtime.retry(instance.id, LEAD, {"x": 1})
    assert runtime.instance(instance.id).status == "cancelled"


def test_reserved_element_ids_are_refused_at_deploy(runtime):
    # A start event with id "Start" would collide with SpiffWorkflow's own start task spec and the
    # process could never start: deployment names the element instead.
    path = FIXTURES_RUNTIME / "reserved_ids.bpmn"
    report = runtime.deploy([(path.name, path.read_bytes())])
    assert report.results == []
    assert any("reserved" in p.message and p.element.startswith("startEvent Start") for p in report.problems), report.problems
    assert runtime.instances(key="rt_reserved") == []

"""External tasks (camunda:type="external") driven through /api/v1 and /engine-rest, asserting what
Camunda 7 does with the same models: the token waits at the task, a worker's variables become
process variables, a BPMN error takes the matching error boundary event, an exhausted task is an
incident until its retries are set, a message moves the instance with that business key."""

from __future__ import annotations

import base64

from engine.accounts import save_user
from tests.constructs.conftest import PASSWORD

WORKER = {"Authorization": "Basic " + base64.b64encode(f"erp.worker:{PASSWORD}".encode()).decode()}


def _worker(flow):
    save_user(flow.runtime.db, "erp.worker", "worker", password=PASSWORD)
    return WORKER


def _fetch(flow, topic, worker="w1", expect=200):
    return flow.call("POST", "/engine-rest/external-task/fetchAndLock", expect, headers=WORKER, json={
        "workerId": worker, "maxTasks": 10, "topics": [{"topicName": topic, "lockDuration": 60000}]})


def _post(flow, task_id, verb, body, expect=204):
    return flow.call("POST", f"/engine-rest/external-task/{task_id}/{verb}", expect, headers=WORKER, json=body)


def test_service_task_waits_for_the_worker_and_takes_its_variables(flow):
    _worker(flow)
    flow.deploy("xt_order_lookup.bpmn")
    instance = flow.start("xt_order_lookup", {"order": "A-17"})
    assert flow.status(instance["id"]) == "running" and flow.open_tasks(instance["id"]) == []
    [task] = _fetch(flow, "erp-lookup")
    assert task["activityId"] == "lookup" and task["variables"]["order"]["value"] == "A-17"
    assert _fetch(flow, "erp-lookup", "w2") == []  # one worker at a time
    _post(flow, task["id"], "complete", {"workerId": "w1", "variables": {
        "amount": {"value": 99, "type": "Long"}, "known": {"value": True, "type": "Boolean"}}})
    variables = flow.variables(instance["id"])
    assert flow.status(instance["id"]) == "completed"
    assert (variables["amount"], variables["known"], variables["path"]) == (99, True, "found")


def test_bpmn_error_takes_the_error_boundary_path(flow):
    _worker(flow)
    flow.deploy("xt_order_lookup.bpmn")
    instance = flow.start("xt_order_lookup", {"order": "Z-0"})
    [task] = _fetch(flow, "erp-lookup")
    _post(flow, task["id"], "bpmnError", {"workerId": "w1", "errorCode": "ORDER_UNKNOWN", "errorMessage": "no order"})
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["path"] == "unknown"
    _post(flow, task["id"], "complete", {"workerId": "w1"}, expect=404)  # the task is gone


def test_exhausted_retries_are_an_incident_until_retries_are_set(flow):
    _worker(flow)
    flow.deploy("xt_order_lookup.bpmn")
    instance = flow.start("xt_order_lookup", {})
    [task] = _fetch(flow, "erp-lookup")
    _post(flow, task["id"], "failure", {"workerId": "w1", "errorMessage": "ERP down", "retries": 0,
                                        "retryTimeout": 0})
    assert flow.status(instance["id"]) == "incident"
    assert [i["message"] for i in flow.incidents(instance["id"])] == ["ERP down"]
    assert _fetch(flow, "erp-lookup") == []
    flow.call("PUT", f"/engine-rest/external-task/{task['id']}/retries", 204, headers=WORKER, json={"retries": 3})
    assert flow.status(instance["id"]) == "running"
    [again] = _fetch(flow, "erp-lookup")
    assert again["retries"] == 3 and again["errorMessage"] == "ERP down"


def test_business_rule_and_send_tasks_as_external_tasks_with_a_message_between(flow):
    _worker(flow)
    flow.deploy("xt_credit_note.bpmn")
    a = flow.start("xt_credit_note", {}, business_key="C-1")
    b = flow.start("xt_credit_note", {}, business_key="C-2")
    for task in _fetch(flow, "erp-credit-note"):
        _post(flow, task["id"], "complete", {"workerId": "w1"})
    answer = flow.call("POST", "/engine-rest/message", 200, headers=WORKER, json={
        "messageName": "CreditNoteApproved", "businessKey": "C-1", "resultEnabled": True,
        "processVariables": {"approved": {"value": True}}})
    assert [r["execution"]["processInstanceId"] for r in answer] == [a["id"]]
    [notify] = _fetch(flow, "notify-supplier")
    assert notify["processInstanceId"] == a["id"] and notify["variables"]["approved"]["value"] is True
    _post(flow, notify["id"], "complete", {"workerId": "w1"})
    assert flow.status(a["id"]) == "completed" and flow.status(b["id"]) == "running"


def test_boundary_timer_cancels_the_external_task(flow):
    _worker(flow)
    flow.deploy("xt_erp_timeout.bpmn")
    instance = flow.start("xt_erp_timeout", {})
    [task] = _fetch(flow, "ticketing")
    assert flow.advance(minutes=30) == 0
    assert flow.advance(hours=1) == 1  # the worker was too slow: a person takes over
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["open_by_hand"]
    assert flow.call("GET", "/engine-rest/external-task", 200, headers=WORKER,
                     query_string={"processInstanceId": instance["id"]}) == []
    _post(flow, task["id"], "complete", {"workerId": "w1"}, expect=404)  # Camunda: the task was cancelled
    flow.complete(instance["id"], "open_by_hand")
    assert flow.status(instance["id"]) == "completed"


def _rows(flow, instance_id):
    """{activity: [states]} of the instance's external-task rows, oldest first."""
    from sqlalchemy import select

    from storage.external_tasks import ExternalTaskRow

    found: dict[str, list[str]] = {}
    with flow.runtime.db.read() as session:
        for row in session.scalars(select(ExternalTaskRow).where(ExternalTaskRow.instance_id == instance_id)
                                   .order_by(ExternalTaskRow.created_at, ExternalTaskRow.id)):
            found.setdefault(row.activity_id, []).append(row.state)
    return found


def test_parallel_and_looping_external_tasks_each_get_one_row(flow):
    """A completion's save works from the rows it read with the instance's lock: the other branch's
    task stays open (not closed, not added twice), a task entered again by a loop gets a new row."""
    _worker(flow)
    flow.deploy("xt_parallel_loop.bpmn")
    instance = flow.start("xt_parallel_loop", {})
    [credit], [notify] = _fetch(flow, "credit"), _fetch(flow, "notify")
    _post(flow, credit["id"], "complete", {"workerId": "w1"})
    assert _rows(flow, instance["id"]) == {"credit": ["done"], "notify": ["open"]}
    assert [t["id"] for t in _fetch(flow, "notify", "w2")] == []  # still locked by w1, still the same task
    _post(flow, notify["id"], "complete", {"workerId": "w1"})
    for approved in (False, False, True):
        [check] = _fetch(flow, "check")
        _post(flow, check["id"], "complete", {"workerId": "w1", "variables": {
            "approved": {"value": approved, "type": "Boolean"}}})
    assert flow.status(instance["id"]) == "completed"
    assert _rows(flow, instance["id"]) == {"credit": ["done"], "notify": ["done"], "check": ["done"] * 3}
    events = [e["type"] for e in flow.instance(instance["id"])["audit"] if e["type"].startswith("external_task")]
    assert events.count("external_task_created") == events.count("external_task_completed") == 5
    assert "external_task_cancelled" not in events  # a completed task is not also "cancelled"

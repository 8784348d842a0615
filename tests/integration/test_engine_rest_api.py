"""/engine-rest beyond external tasks (Flask test client, SQLite and PostgreSQL): user tasks with
Camunda's task API, process instances and their variables, message correlation options, lock
extension and unlock — with PDCA Flow's permissions and Camunda's shapes."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import basic, lead_actor

MODELS = Path(__file__).parents[1] / "constructs" / "models"


def test_user_tasks_through_the_task_api(rest, runtime):
    instance = runtime.start("simple_review", {}, lead_actor())
    tasks = rest.get(f"/engine-rest/task?processInstanceId={instance.id}", headers=basic("rita.reviewer")).get_json()
    assert [(t["taskDefinitionKey"], t["assignee"]) for t in tasks] == [("Task_Assess", None)]
    assert tasks[0]["due"].endswith("+0000")
    task_id = tasks[0]["id"]
    assert rest.get(f"/engine-rest/task?processInstanceId={instance.id}", headers=basic("otto.outsider")).get_json() == []
    assert rest.post(f"/engine-rest/task/{task_id}/claim", json={"userId": "rita.reviewer"},
                     headers=basic("rita.reviewer")).status_code == 204
    taken = rest.post(f"/engine-rest/task/{task_id}/claim", json={}, headers=basic("rob.reviewer"))
    assert taken.status_code == 409 and set(taken.get_json()) == {"type", "message"}
    assert rest.get(f"/engine-rest/task/{task_id}", headers=basic("rita.reviewer")).get_json()["assignee"] == \
        "rita.reviewer"
    assert rest.post(f"/engine-rest/task/{task_id}/unclaim", headers=basic("rita.reviewer")).status_code == 204
    invalid = rest.post(f"/engine-rest/task/{task_id}/complete", headers=basic("rita.reviewer"),
                        json={"variables": {"amount": {"value": -5, "type": "Long"}}})
    assert invalid.status_code == 400 and invalid.get_json()["type"] == "InvalidRequestException"
    done = rest.post(f"/engine-rest/task/{task_id}/complete", headers=basic("rita.reviewer"),
                     json={"variables": {"amount": {"value": 50, "type": "Long"}}, "withVariablesInReturn": True})
    # the declared type comes back (engine/runtime/variable_types.py), not the one 50 would suggest
    assert done.status_code == 200 and done.get_json()["amount"] == {"type": "Long", "value": 50, "valueInfo": {}}


def test_process_instances_and_variables(rest, runtime):
    started = rest.post("/engine-rest/process-definition/key/xt_order_lookup/start", headers=basic("erp.worker"),
                        json={"variables": {"order": {"value": "A-1", "type": "String"},
                                            "due": {"value": "2026-12-02T10:00:00.000+0000", "type": "Date"},
                                            "meta": {"value": '{"lines": 2}', "type": "Json"}},
                              "businessKey": "C-77", "withVariablesInReturn": False})
    assert started.status_code == 200
    body = started.get_json()
    assert body["businessKey"] == "C-77" and body["ended"] is False and body["definitionId"].startswith(
        "xt_order_lookup:1")
    instance_id = body["id"]
    denied = rest.post("/engine-rest/process-definition/key/xt_order_lookup/start", headers=basic("rita.reviewer"),
                       json={})
    assert denied.status_code == 403 and denied.get_json()["type"] == "AuthorizationException"
    missing = rest.post("/engine-rest/process-definition/key/nope/start", headers=basic("erp.worker"), json={})
    assert missing.status_code == 404
    variables = rest.get(f"/engine-rest/process-instance/{instance_id}/variables", headers=basic("lena.lead")).get_json()
    assert variables["order"] == {"type": "String", "value": "A-1", "valueInfo": {}}
    assert variables["meta"] == {"type": "Json", "value": '{"lines": 2}', "valueInfo": {}}
    one = rest.get(f"/engine-rest/process-instance/{instance_id}/variables/order", headers=basic("lena.lead"))
    assert one.get_json()["value"] == "A-1"
    # an employee who has nothing to do with the instance is told it does not exist
    assert rest.get(f"/engine-rest/process-instance/{instance_id}", headers=basic("rita.reviewer")).status_code == 404
    listed = rest.get("/engine-rest/process-instance?processDefinitionKey=xt_order_lookup&businessKey=C-77",
                      headers=basic("lena.lead")).get_json()
    assert [i["id"] for i in listed] == [instance_id]
    bad = rest.post("/engine-rest/process-definition/key/xt_order_lookup/start", headers=basic("erp.worker"),
                    json={"variables": {"n": {"value": "x", "type": "Double"}}})
    assert bad.status_code == 400 and "variables.n" in bad.get_json()["message"]


def _waiting_for_approval(rest, runtime, business_key, data):
    instance = runtime.start("xt_credit_note", data, lead_actor(), business_key=business_key)
    tasks = rest.post("/engine-rest/external-task/fetchAndLock", headers=basic("erp.worker"), json={
        "workerId": "w", "maxTasks": 10, "topics": [{"topicName": "erp-credit-note", "lockDuration": 10000,
                                                     "processInstanceId": instance.id}]}).get_json()
    for task in tasks:
        assert rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic("erp.worker"),
                         json={"workerId": "w"}).status_code == 204
    return instance.id


def test_message_correlation_options(rest, runtime):
    a = _waiting_for_approval(rest, runtime, "C-1", {"supplier": "ACME"})
    b = _waiting_for_approval(rest, runtime, "C-2", {"supplier": "ACME"})
    c = _waiting_for_approval(rest, runtime, "C-3", {"supplier": "Globex"})
    url, auth = "/engine-rest/message", basic("erp.worker")
    two = rest.post(url, headers=auth, json={"messageName": "CreditNoteApproved",
                                             "correlationKeys": {"supplier": {"value": "ACME", "type": "String"}}})
    assert two.status_code == 400 and "2 executions" in two.get_json()["message"]  # not `all`: must be one
    one = rest.post(url, headers=auth, json={"messageName": "CreditNoteApproved", "processInstanceId": c})
    assert one.status_code == 204 and one.data == b""
    both = rest.post(url, headers=auth, json={"messageName": "CreditNoteApproved", "all": True, "resultEnabled": True,
                                              "correlationKeys": {"supplier": {"value": "ACME"}}})
    assert both.status_code == 200
    assert sorted(r["execution"]["processInstanceId"] for r in both.get_json()) == sorted([a, b])
    nothing = rest.post(url, headers=auth, json={"messageName": "CreditNoteApproved", "businessKey": "C-1"})
    assert nothing.status_code == 400 and nothing.get_json()["type"] == "RestException"
    assert rest.post(url, headers=basic("rita.reviewer"), json={"messageName": "X"}).status_code == 403


def test_extend_lock_and_unlock(rest, runtime):
    runtime.start("xt_order_lookup", {}, lead_actor())
    fetch = {"workerId": "w1", "topics": [{"topicName": "erp-lookup", "lockDuration": 10000}]}
    [task] = rest.post("/engine-rest/external-task/fetchAndLock", headers=basic("erp.worker"), json=fetch).get_json()
    base = f"/engine-rest/external-task/{task['id']}"
    other = rest.post(f"{base}/extendLock", headers=basic("erp.worker"), json={"workerId": "w2", "newDuration": 5000})
    assert other.status_code == 400 and other.get_json()["type"] == "RestException"
    assert rest.post(f"{base}/extendLock", headers=basic("erp.worker"),
                     json={"workerId": "w1", "newDuration": 600000}).status_code == 204
    extended = rest.get(base, headers=basic("erp.worker")).get_json()
    assert extended["lockExpirationTime"] > task["lockExpirationTime"] and extended["workerId"] == "w1"
    assert rest.post(f"{base}/unlock", headers=basic("erp.worker")).status_code == 204
    [again] = rest.post("/engine-rest/external-task/fetchAndLock", headers=basic("erp.worker"),
                        json={**fetch, "workerId": "w2"}).get_json()
    assert again["id"] == task["id"] and again["workerId"] == "w2"
    count = rest.get("/engine-rest/external-task/count?topicName=erp-lookup&locked=true",
                     headers=basic("erp.worker")).get_json()
    assert count == {"count": 1}


def test_message_starts_a_process_when_no_instance_waits(rest, runtime):
    runtime.deploy_paths([MODELS / "evt_message_start.bpmn"])
    url, auth = "/engine-rest/message", basic("erp.worker")
    started = rest.post(url, headers=auth, json={
        "messageName": "order_placed", "businessKey": "O-9", "resultEnabled": True, "variablesInResultEnabled": True,
        "processVariables": {"order": {"value": "O-9", "type": "String"}}})
    assert started.status_code == 200
    [result] = started.get_json()
    assert result["resultType"] == "ProcessDefinition" and result["execution"] is None
    instance = result["processInstance"]
    assert instance["businessKey"] == "O-9" and instance["ended"] is False
    assert instance["definitionId"].startswith("evt_message_start:")
    assert result["variables"]["order"] == {"type": "String", "value": "O-9", "valueInfo": {}}
    started_instance = runtime.instance(instance["id"])
    assert started_instance.data["order"] == "O-9" and started_instance.business_key == "O-9"
    # without resultEnabled: 204; a start event is never correlated by processInstanceId
    assert rest.post(url, headers=auth, json={"messageName": "order_placed"}).status_code == 204
    named = rest.post(url, headers=auth, json={"messageName": "order_placed", "processInstanceId": instance["id"]})
    assert named.status_code == 400 and "No process definition or execution" in named.get_json()["message"]
    unknown = rest.post(url, headers=auth, json={"messageName": "nobody_listens"})
    assert unknown.status_code == 400 and unknown.get_json()["type"] == "RestException"
    assert len(runtime.instances(key="evt_message_start")) == 2


def test_signal_reaches_waiting_instances_and_starts_processes(rest, runtime):
    runtime.deploy_paths([MODELS / "evt_signal_catch.bpmn", MODELS / "evt_signal_start.bpmn"])
    waiting = runtime.start("evt_signal_catch", {"path": []}, lead_actor())
    url = "/engine-rest/signal"
    sent = rest.post(url, headers=basic("erp.worker"),
                     json={"name": "alarm", "variables": {"level": {"value": 3, "type": "Integer"}}})
    assert sent.status_code == 204 and sent.data == b""
    reached = runtime.instance(waiting.id)
    assert (reached.status, reached.data["level"], reached.data["path"]) == ("completed", 3, ["alarmed"])
    [started] = runtime.instances(key="evt_signal_start")
    assert runtime.instance(started["id"]).data["level"] == 3
    # nobody listening is not an error
    assert rest.post(url, headers=basic("lena.lead"), json={"name": "silence"}).status_code == 204
    missing = rest.post(url, headers=basic("erp.worker"), json={"variables": {}})
    assert missing.status_code == 400 and "name" in missing.get_json()["message"]
    one = rest.post(url, headers=basic("erp.worker"), json={"name": "alarm", "executionId": waiting.id})
    assert one.status_code == 400 and "executionId" in one.get_json()["message"]
    assert rest.post(url, headers=basic("rita.reviewer"), json={"name": "alarm"}).status_code == 403


def test_decision_evaluation_returns_typed_result_maps(rest, runtime):
    runtime.deploy_paths([MODELS / "dmn_expenses.dmn", MODELS / "dmn_unique.dmn"])
    url = "/engine-rest/decision-definition/key/{}/evaluate"
    answer = rest.post(url.format("expense_approver"), headers=basic("rita.reviewer"), json={
        "variables": {"category": {"value": "Travel", "type": "String"}, "amount": {"value": 400, "type": "Integer"}}})
    assert answer.status_code == 200
    assert answer.get_json() == [{"approver": {"type": "String", "value": "manager", "valueInfo": {}}}]
    untyped = rest.post(url.format("expense_approver"), headers=basic("erp.worker"),
                        json={"variables": {"category": {"value": "Office"}, "amount": {"value": 5}}})
    assert untyped.get_json() == [{"approver": {"type": "String", "value": "purchasing", "valueInfo": {}}}]
    violated = rest.post(url.format("overlapping"), headers=basic("erp.worker"),
                         json={"variables": {"amount": {"value": 800, "type": "Integer"}}})
    assert violated.status_code == 400 and violated.get_json()["message"].startswith("Cannot evaluate decision overlapping")
    missing = rest.post(url.format("nope"), headers=basic("erp.worker"), json={})
    assert missing.status_code == 404 and missing.get_json() == {
        "type": "RestException", "message": "No matching decision definition with key: nope"}
    bad = rest.post(url.format("expense_approver"), headers=basic("erp.worker"),
                    json={"variables": {"amount": {"value": "x", "type": "Integer"}}})
    assert bad.status_code == 400 and "variables.amount" in bad.get_json()["message"]
    assert rest.post(url.format("expense_approver"), json={}).status_code == 401


def test_external_tasks_are_read_by_those_who_may_work_them(rest, runtime):
    """Workers, quality leads and admins see external tasks (their variables' names, business keys, the
    errors workers reported); an employee gets 403 on every read, as on fetchAndLock."""
    rest.post("/engine-rest/process-definition/key/xt_order_lookup/start", headers=basic("erp.worker"),
              json={"businessKey": "C-78"})
    [task] = rest.get("/engine-rest/external-task", headers=basic("erp.worker")).get_json()
    assert rest.get("/engine-rest/external-task/count", headers=basic("lena.lead")).get_json() == {"count": 1}
    for path in ("/engine-rest/external-task", "/engine-rest/external-task/count",
                 f"/engine-rest/external-task/{task['id']}", f"/engine-rest/external-task/{task['id']}/errorDetails"):
        denied = rest.get(path, headers=basic("rita.reviewer"))
        assert denied.status_code == 403 and denied.get_json()["type"] == "AuthorizationException", path


def test_task_variables_form_variables_submit_form_and_assignee(rest, runtime):
    instance = runtime.start("simple_review", {"note": "from the customer", "ref": 7}, lead_actor())
    [task] = rest.get(f"/engine-rest/task?processInstanceId={instance.id}", headers=basic("rita.reviewer")).get_json()
    variables = rest.get(f"/engine-rest/task/{task['id']}/variables", headers=basic("rita.reviewer")).get_json()
    assert variables["note"] == {"type": "String", "value": "from the customer", "valueInfo": {}}
    assert variables["ref"]["type"] == "Integer" and "amount" not in variables
    one = rest.get(f"/engine-rest/task/{task['id']}/variables/ref", headers=basic("rita.reviewer"))
    assert one.status_code == 200 and one.get_json()["value"] == 7
    assert rest.get(f"/engine-rest/task/{task['id']}/variables/nope", headers=basic("rita.reviewer")).status_code == 404
    # someone the task is not offered to is told it does not exist, variables included
    assert rest.get(f"/engine-rest/task/{task['id']}/variables", headers=basic("otto.outsider")).status_code == 404
    form = rest.get(f"/engine-rest/task/{task['id']}/form-variables", headers=basic("rita.reviewer")).get_json()
    # each form field typed as the field is, with its variable's value; the other variables as they are
    assert form["amount"] == {"type": "Long", "value": None, "valueInfo": {}}
    assert form["urgent"]["type"] == "Boolean" and form["note"]["value"] == "from the customer"
    assert form["ref"]["value"] == 7
    some = rest.get(f"/engine-rest/task/{task['id']}/form-variables?variableNames=amount,note",
                    headers=basic("rita.reviewer")).get_json()
    assert set(some) == {"amount", "note"}
    # assigning is a lead's: an employee is refused, a lead assigns and gives back
    refused = rest.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "rob.reviewer"},
                        headers=basic("rita.reviewer"))
    assert refused.status_code == 403
    assert rest.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "rob.reviewer"},
                     headers=basic("lena.lead")).status_code == 204
    assert rest.get(f"/engine-rest/task/{task['id']}", headers=basic("lena.lead")).get_json()["assignee"] == "rob.reviewer"
    assert rest.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": None},
                     headers=basic("lena.lead")).status_code == 204
    assert rest.get(f"/engine-rest/task/{task['id']}", headers=basic("lena.lead")).get_json()["assignee"] is None
    # submit-form validates like complete: a missing required field names it, then a good one completes
    missing = rest.post(f"/engine-rest/task/{task['id']}/submit-form", json={"variables": {}},
                        headers=basic("rita.reviewer"))
    assert missing.status_code == 400 and "amount" in missing.get_json()["message"]
    done = rest.post(f"/engine-rest/task/{task['id']}/submit-form", headers=basic("rita.reviewer"),
                     json={"variables": {"amount": {"value": 5, "type": "Long"}}})
    assert done.status_code == 204
    assert rest.get(f"/engine-rest/task/{task['id']}", headers=basic("rita.reviewer")).status_code == 404
    assert runtime.instance(instance.id).data["amount"] == 5


def test_deleting_a_process_instance_cancels_it(rest, runtime):
    instance = runtime.start("simple_review", {}, lead_actor())
    # an employee who has a task in it may see it, but not end it; someone without one does not see it
    assert rest.delete(f"/engine-rest/process-instance/{instance.id}", headers=basic("rita.reviewer")).status_code == 403
    assert rest.delete(f"/engine-rest/process-instance/{instance.id}", headers=basic("otto.outsider")).status_code == 404
    assert runtime.instance(instance.id).status == "running"
    assert rest.delete(f"/engine-rest/process-instance/{instance.id}", headers=basic("lena.lead")).status_code == 204
    ended = runtime.instance(instance.id)
    assert ended.status == "cancelled" and [a.type for a in ended.audit].count("cancel") == 1
    assert all(t.state not in ("open", "claimed") for t in ended.tasks)
    # gone for Camunda's runtime service: 404, unless failIfNotExists=false
    again = rest.delete(f"/engine-rest/process-instance/{instance.id}", headers=basic("lena.lead"))
    assert again.status_code == 404 and again.get_json()["type"] == "InvalidRequestException"
    assert rest.delete(f"/engine-rest/process-instance/{instance.id}?failIfNotExists=false",
                       headers=basic("lena.lead")).status_code == 204


def test_form_variables_are_converted_to_their_fields_types(rest, runtime):
    review = (Path(__file__).parents[1] / "fixtures" / "simple_review.bpmn").read_bytes()
    with_defaults = (review.replace(b'<camunda:formField id="urgent" label="Urgent" type="boolean" />',
                                    b'<camunda:formField id="urgent" label="Urgent" type="boolean" defaultValue="true" />')
                     .replace(b'<camunda:formField id="note" label="Note" type="string" />',
                              b'<camunda:formField id="note" label="Note" type="string" defaultValue="none yet" />'))
    assert runtime.deploy([("simple_review.bpmn", with_defaults)], lead_actor()).problems == []
    instance = runtime.start("simple_review", {"amount": "12"}, lead_actor())
    [task] = rest.get(f"/engine-rest/task?processInstanceId={instance.id}", headers=basic("rita.reviewer")).get_json()
    form = rest.get(f"/engine-rest/task/{task['id']}/form-variables", headers=basic("rita.reviewer")).get_json()
    # a default is text in the model; Camunda's form types convert it, and a variable's value too
    assert form["urgent"] == {"type": "Boolean", "value": True, "valueInfo": {}}
    assert form["note"] == {"type": "String", "value": "none yet", "valueInfo": {}}
    assert form["amount"] == {"type": "Long", "value": 12, "valueInfo": {}}
    runtime.set_variables(instance.id, lead_actor(), {"amount": "not a number"})
    form = rest.get(f"/engine-rest/task/{task['id']}/form-variables", headers=basic("rita.reviewer")).get_json()
    assert form["amount"] == {"type": "String", "value": "not a number", "valueInfo": {}}  # what it is, not Long


def test_a_request_another_sites_page_makes_is_refused(rest, runtime):
    instance = runtime.start("simple_review", {}, lead_actor())
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = rest.delete(f"/engine-rest/process-instance/{instance.id}", headers={**basic("lena.lead"), **headers})
        assert refused.status_code == 403 and refused.get_json()["type"] == "AuthorizationException"
    assert runtime.instance(instance.id).status == "running"
    # reading is not an attack another site can use (it cannot read the answer); the same origin may act
    assert rest.get(f"/engine-rest/process-instance/{instance.id}",
                    headers={**basic("lena.lead"), "Sec-Fetch-Site": "cross-site"}).status_code == 200
    same = rest.delete(f"/engine-rest/process-instance/{instance.id}",
                       headers={**basic("lena.lead"), "Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"})
    assert same.status_code == 204

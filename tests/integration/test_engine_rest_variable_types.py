"""/engine-rest answers a variable with the type it was sent with (engine/runtime/variable_types.py):
a Java worker casts by the `type` field (`Long amount = task.getVariable("amount")`), so a small Long
must not come back as Integer, nor a Date as String. A type is kept while the value fits it and
forgotten (inferred again) once a script gives the variable a value of another kind, or it is gone.
SQLite and PostgreSQL, through the Flask app."""

from __future__ import annotations

from tests.conftest import sql_statements
from tests.integration.conftest import ENGINE_REST_MODELS, basic, lead_actor

FETCH = "/engine-rest/external-task/fetchAndLock"


def _fetch(rest, topic: str) -> dict:
    response = rest.post(FETCH, headers=basic(), json={
        "workerId": "w1", "maxTasks": 1, "topics": [{"topicName": topic, "lockDuration": 60000}]})
    assert response.status_code == 200, response.get_json()
    [task] = response.get_json()
    return task


def _typed(type_: str, value) -> dict:
    return {"type": type_, "value": value, "valueInfo": {}}


def _variables(rest, instance_id: str) -> dict:
    response = rest.get(f"/engine-rest/process-instance/{instance_id}/variables", headers=basic())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_small_long_and_short_come_back_as_sent(rest):
    """Start with a Long 5 and a Short 7: fetchAndLock, the start answer and the instance reads say
    Long and Short (inference would say Integer for both); an Integer stays Integer."""
    started = rest.post("/engine-rest/process-definition/key/xt_order_lookup/start", headers=basic(), json={
        "variables": {"amount": {"value": 5, "type": "Long"}, "lines": {"value": 7, "type": "short"},
                      "count": {"value": 2, "type": "Integer"}, "order": {"value": "A-1"},
                      "rate": {"value": 5, "type": "Double"}},
        "withVariablesInReturn": True})
    assert started.status_code == 200, started.get_json()
    body = started.get_json()
    assert body["variables"]["amount"] == _typed("Long", 5) and body["variables"]["lines"] == _typed("Short", 7)
    task = _fetch(rest, "erp-lookup")
    assert task["variables"] == {"amount": _typed("Long", 5), "lines": _typed("Short", 7),
                                 "count": _typed("Integer", 2), "order": _typed("String", "A-1"),
                                 "rate": _typed("Double", 5.0)}  # stored as 5.0: its value tells
    assert _variables(rest, body["id"])["amount"] == _typed("Long", 5)
    one = rest.get(f"/engine-rest/process-instance/{body['id']}/variables/lines", headers=basic())
    assert one.get_json() == _typed("Short", 7)


def test_a_date_from_a_completion_reads_back_as_a_camunda_date(rest, runtime):
    """A worker completes with a Date: the instance's variables answer it as Date in Camunda's format
    (yyyy-MM-dd'T'HH:mm:ss.SSSZ, what the Java client parses), whatever ISO form it was sent in;
    scripts and forms still see the text. Its Long result comes back as Long too."""
    instance = runtime.start("xt_credit_note", {"order": "A-2"}, lead_actor())
    task = _fetch(rest, "erp-credit-note")
    done = rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(), json={
        "workerId": "w1", "variables": {"due": {"value": "2026-12-02T11:30:00+01:00", "type": "Date"},
                                        "note": {"value": 42, "type": "Long"},
                                        "rate": {"value": 2, "type": "Double"}}})
    assert done.status_code == 204
    variables = _variables(rest, instance.id)
    assert variables["due"] == _typed("Date", "2026-12-02T10:30:00.000+0000")
    assert variables["note"] == _typed("Long", 42) and variables["rate"] == _typed("Double", 2.0)
    assert runtime.instance(instance.id).data["due"] == "2026-12-02T11:30:00+01:00"  # what scripts see
    one = rest.get(f"/engine-rest/process-instance/{instance.id}/variables/due", headers=basic())
    assert one.get_json() == _typed("Date", "2026-12-02T10:30:00.000+0000")


def test_message_and_variable_writes_declare_and_replace_types(rest, runtime):
    """Message correlation's processVariables keep their Short; a later write of the same name without
    a type (or as another type) replaces the remembered one; a deleted variable forgets it."""
    instance = runtime.start("xt_credit_note", {"order": "A-3"}, lead_actor())
    task = _fetch(rest, "erp-credit-note")
    assert rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                     json={"workerId": "w1"}).status_code == 204
    sent = rest.post("/engine-rest/message", headers=basic(), json={
        "messageName": "CreditNoteApproved", "processInstanceId": instance.id,
        "processVariables": {"level": {"value": 3, "type": "Short"}, "amount": {"value": 9, "type": "Long"}}})
    assert sent.status_code == 204, sent.get_json()
    notify = _fetch(rest, "notify-supplier")
    assert notify["variables"]["level"] == _typed("Short", 3) and notify["variables"]["amount"] == _typed("Long", 9)
    base = f"/engine-rest/process-instance/{instance.id}/variables"
    assert rest.put(f"{base}/level", headers=basic(), json={"value": 4}).status_code == 204
    assert rest.post(base, headers=basic(), json={"modifications": {"since": {"value": "2026-01-05T08:00:00.000+0000",
                                                                              "type": "Date"}},
                                                 "deletions": ["amount"]}).status_code == 204
    variables = _variables(rest, instance.id)
    assert variables["level"] == _typed("Integer", 4) and "amount" not in variables
    assert variables["since"] == _typed("Date", "2026-01-05T08:00:00.000+0000")
    # set again as a Long: the name had no type left to come back from the deletion
    assert rest.put(f"{base}/amount", headers=basic(), json={"value": 1, "type": "Long"}).status_code == 204
    assert _variables(rest, instance.id)["amount"] == _typed("Long", 1)


def test_a_script_that_changes_the_kind_of_value_forgets_the_type(rest, runtime):
    """xt_retype's script makes the Long amount a text and adds 1 to the Short count: the next task's
    fetch infers String for the amount and keeps Short for the count (it still fits)."""
    runtime.deploy_paths([ENGINE_REST_MODELS / "xt_retype.bpmn"])
    started = rest.post("/engine-rest/process-definition/key/xt_retype/start", headers=basic(), json={
        "variables": {"amount": {"value": 5, "type": "Long"}, "count": {"value": 1, "type": "Short"}}})
    assert started.status_code == 200
    price = _fetch(rest, "retype-price")
    assert price["variables"]["amount"] == _typed("Long", 5)
    assert rest.post(f"/engine-rest/external-task/{price['id']}/complete", headers=basic(),
                     json={"workerId": "w1"}).status_code == 204
    book = _fetch(rest, "retype-book")
    assert book["variables"]["amount"] == _typed("String", "five euros")
    assert book["variables"]["count"] == _typed("Short", 2)
    assert _variables(rest, started.get_json()["id"])["amount"] == _typed("String", "five euros")


def test_failure_variables_keep_their_type_and_bad_dates_are_refused(rest, runtime):
    """A failure's variables are set with their type; a Date that is not a date is 400 and changes
    nothing."""
    instance = runtime.start("xt_order_lookup", {"order": "A-4"}, lead_actor())
    task = _fetch(rest, "erp-lookup")
    failed = rest.post(f"/engine-rest/external-task/{task['id']}/failure", headers=basic(), json={
        "workerId": "w1", "errorMessage": "ERP down", "retries": 2, "retryTimeout": 0,
        "variables": {"attempted": {"value": "2026-12-02T10:00:00.000+0000", "type": "Date"}}})
    assert failed.status_code == 204
    again = _fetch(rest, "erp-lookup")
    assert again["variables"]["attempted"] == _typed("Date", "2026-12-02T10:00:00.000+0000")
    bad = rest.post(f"/engine-rest/external-task/{again['id']}/complete", headers=basic(), json={
        "workerId": "w1", "variables": {"due": {"value": "next tuesday", "type": "Date"}}})
    assert bad.status_code == 400 and bad.get_json()["type"] == "InvalidRequestException"
    assert "due" not in runtime.instance(instance.id).data
    assert rest.post(f"/engine-rest/external-task/{again['id']}/complete", headers=basic(),
                     json={"workerId": "w1"}).status_code == 204


def test_api_v1_and_process_data_carry_no_types(rest, runtime):
    """The types live beside the data: scripts and /api/v1 see the plain values only."""
    started = rest.post("/engine-rest/process-definition/key/xt_order_lookup/start", headers=basic(), json={
        "variables": {"amount": {"value": 5, "type": "Long"}}})
    view = runtime.instance(started.get_json()["id"])
    assert view.data == {"amount": 5} and view.variable_types == {"amount": "Long"}
    assert "variable_types" not in view.as_dict()


def test_instance_updates_of_different_columns_go_out_together(rest, runtime, db):
    """A batch (a timer pass) may update one instance's types and not another's: each row sets the
    columns it names, and both count as matched (storage/instances.py `update_instances`)."""
    from storage import instances as store

    ids = [runtime.start("xt_order_lookup", {"order": f"B-{n}"}, lead_actor()).id for n in range(2)]
    with db.write() as session:
        conn = session.connection()
        rows = {i: store.instance_row(conn, i) for i in ids}
        updates = [{"b_id": i, "b_version": rows[i].version, "version": rows[i].version + 1} for i in ids]
        updates[0]["variable_types"] = {"order": "Xml"}
        assert store.update_instances(conn, updates) == 2
    assert runtime.instance(ids[0]).variable_types == {"order": "Xml"}
    assert runtime.instance(ids[1]).variable_types == {}
    assert _variables(rest, ids[0])["order"] == _typed("Xml", "B-0")


def test_signal_and_bpmn_error_variables_keep_their_type(rest, runtime):
    """A signal that starts an instance gives it its Long; a BPMN error's variables keep their Date."""
    runtime.deploy_paths([ENGINE_REST_MODELS / "evt_signal_start.bpmn"])
    sent = rest.post("/engine-rest/signal", headers=basic(), json={
        "name": "alarm", "variables": {"level": {"value": 3, "type": "Long"}}})
    assert sent.status_code == 204
    [started] = runtime.instances(key="evt_signal_start")
    assert _variables(rest, started["id"])["level"] == _typed("Long", 3)

    instance = runtime.start("xt_order_lookup", {"order": "A-9"}, lead_actor())
    task = _fetch(rest, "erp-lookup")
    thrown = rest.post(f"/engine-rest/external-task/{task['id']}/bpmnError", headers=basic(), json={
        "workerId": "w1", "errorCode": "ORDER_UNKNOWN",
        "variables": {"checked": {"value": "2026-12-02T10:00:00Z", "type": "Date"}}})
    assert thrown.status_code == 204
    assert runtime.instance(instance.id).data["path"] == "unknown"
    # the instance has ended: its variables are still read through the instance (not the runtime list)
    assert _variables(rest, instance.id)["checked"] == _typed("Date", "2026-12-02T10:00:00.000+0000")


def test_a_typed_completion_costs_no_extra_statement(rest, runtime, db):
    """The types ride along in the instance's UPDATE, and only when they change: a completion without
    a remembered type leaves the column out; one with a Long sends as many statements."""
    def complete(variables: dict) -> list[str]:
        task = _fetch(rest, "erp-credit-note")
        with sql_statements(db) as seen:
            done = rest.post(f"/engine-rest/external-task/{task['id']}/complete", headers=basic(),
                             json={"workerId": "w1", "variables": variables})
        assert done.status_code == 204
        return seen

    for n in range(2):
        runtime.start("xt_credit_note", {"order": f"C-{n}"}, lead_actor())
    plain = complete({"result": {"value": "ok", "type": "String"}})
    typed = complete({"result": {"value": 42, "type": "Long"}})
    assert len(plain) == len(typed)
    [plain_update] = [s for s in plain if s.upper().startswith("UPDATE PROCESS_INSTANCE")]
    [typed_update] = [s for s in typed if s.upper().startswith("UPDATE PROCESS_INSTANCE")]
    assert "variable_types" not in plain_update and "variable_types" in typed_update

"""Conditional and default sequence flows leaving an activity, as Camunda 7 takes them: every flow
without a condition and every flow whose condition holds (in parallel), the default flow only when
no other was taken, and "No outgoing sequence flow ... could be selected" (an incident here) when
none can be taken. Sources: user, script, external service and receive tasks, an embedded subprocess,
a multi-instance body, a call activity. The diagram shows the flows taken, and only those."""

from __future__ import annotations

from engine.runtime import Actor
from tests.constructs.test_external_tasks import _fetch, _post, _worker

LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


def _open(flow, iid):
    return sorted(t["spec_id"] for t in flow.open_tasks(iid))


def _diagram(flow, iid):
    diagram = flow.runtime.element_states(iid)
    return {k: v["state"] for k, v in diagram["elements"].items()}, set(diagram["flows"])


def _reviewed(flow, model, data):
    """The review completed: with `data` as its form's values when it has a form, else `data` given at the start."""
    flow.deploy(f"{model}.bpmn")
    with_form = model == "flow_conditional_task"
    iid = flow.start(model, {} if with_form else data)["id"]
    flow.complete(iid, "review", data if with_form else None)
    return iid


def test_both_conditions_true_run_both_branches_in_parallel_to_their_ends(flow):
    iid = _reviewed(flow, "flow_conditional_task", {"amount": 500, "urgent": True})
    assert _open(flow, iid) == ["big", "urgent"]
    states, flows = _diagram(flow, iid)
    assert flows == {"f1", "f_big", "f_urgent"} and "routine" not in states
    flow.complete(iid, "big")
    assert flow.status(iid) == "running" and _open(flow, iid) == ["urgent"]
    flow.complete(iid, "urgent")
    assert flow.status(iid) == "completed"
    states, flows = _diagram(flow, iid)
    assert {states["end_big"], states["end_urgent"]} == {"completed"} and "end_routine" not in states
    assert "f_routine" not in flows and "filed" not in flow.variables(iid)


def test_one_condition_true_takes_only_that_flow(flow):
    iid = _reviewed(flow, "flow_conditional_task", {"amount": 5, "urgent": True})
    assert _open(flow, iid) == ["urgent"]
    assert _diagram(flow, iid)[1] == {"f1", "f_urgent"}
    flow.complete(iid, "urgent")
    assert flow.status(iid) == "completed" and "filed" not in flow.variables(iid)


def test_no_condition_true_takes_the_default_flow(flow):
    iid = _reviewed(flow, "flow_conditional_task", {"amount": 5, "urgent": False})
    assert flow.status(iid) == "completed" and flow.variables(iid)["filed"] is True
    states, flows = _diagram(flow, iid)
    assert flows == {"f1", "f_routine", "f_routine_end"}
    assert states["end_routine"] == "completed" and "big" not in states and "urgent" not in states


def test_no_flow_to_take_is_an_incident_at_the_activity_and_a_retry_with_fixed_data_goes_on(flow):
    iid = _reviewed(flow, "flow_conditional_no_default", {"amount": 50})
    assert flow.status(iid) == "incident" and flow.open_tasks(iid) == []
    [incident] = flow.incidents(iid)
    assert incident["message"] == ("No outgoing sequence flow for the element with id 'review' could be "
                                   "selected for continuing the process")
    assert incident["task_name"] == "Review" and incident["data"]["amount"] == 50
    diagram = flow.runtime.element_states(iid)
    assert diagram["elements"]["review"]["state"] == "incident" and diagram["flows"] == ["f1"]
    assert diagram["elements"]["review"]["count"] == 1  # one run of the task: the choice is no run of its own
    assert incident["task_id"] in diagram["elements"]["review"]["task_ids"]  # the page shows it at the task
    assert flow.variables(iid)["amount"] == 50  # nothing lost
    flow.runtime.retry(iid, LEAD, {"amount": 500})
    assert flow.status(iid) == "running" and _open(flow, iid) == ["big"]  # review is not asked again
    assert flow.runtime.element_states(iid)["elements"]["review"]["state"] == "completed"
    flow.complete(iid, "big")
    assert flow.status(iid) == "completed"


def test_a_condition_that_fails_is_an_incident_and_a_retry_evaluates_it_again(flow):
    iid = _reviewed(flow, "flow_conditional_no_default", {})  # no `amount`: the condition cannot be evaluated
    assert flow.status(iid) == "incident"
    [incident] = flow.incidents(iid)
    assert "amount" in incident["message"]
    assert flow.runtime.element_states(iid)["elements"]["review"]["state"] == "incident"
    flow.runtime.retry(iid, LEAD, {"amount": 3})
    assert _open(flow, iid) == ["small"]


def test_a_script_task_takes_its_unconditioned_flow_and_the_conditions_that_hold(flow):
    flow.deploy("flow_conditional_script.bpmn")
    normal = flow.start("flow_conditional_script", {"amount": 50})["id"]
    assert _open(flow, normal) == ["record"]
    high = flow.start("flow_conditional_script", {"amount": 500})["id"]
    assert _open(flow, high) == ["expedite", "record"]
    audited = flow.start("flow_conditional_script", {"amount": 5000})["id"]
    assert _open(flow, audited) == ["expedite", "record"]
    assert flow.variables(audited)["audited"] is True  # the third branch ran to its end beside them
    states, flows = _diagram(flow, audited)
    assert states["end_audit"] == "completed"
    assert flows == {"f1", "f_record", "f_expedite", "f_audit", "f_audit_end"}
    assert _diagram(flow, normal)[1] == {"f1", "f_record"}
    for element in ("record", "expedite"):
        flow.complete(audited, element)
    assert flow.status(audited) == "completed"


def test_an_external_task_leaves_by_its_condition_or_its_default(flow):
    _worker(flow)
    flow.deploy("flow_conditional_external.bpmn")
    shipped = flow.start("flow_conditional_external")["id"]
    backordered = flow.start("flow_conditional_external")["id"]
    tasks = {t["processInstanceId"]: t for t in _fetch(flow, "stock-check")}
    for iid, in_stock in ((shipped, True), (backordered, False)):
        _post(flow, tasks[iid]["id"], "complete", {"workerId": "w1", "variables": {
            "in_stock": {"value": in_stock, "type": "Boolean"}}})
    assert _open(flow, shipped) == ["ship"] and _open(flow, backordered) == ["backorder"]
    assert _diagram(flow, backordered)[1] == {"f1", "f_backorder"}


def test_a_subprocess_and_a_multi_instance_body_leave_once_by_their_conditions(flow):
    flow.deploy("flow_conditional_activities.bpmn")
    small = flow.start("flow_conditional_activities", {"amount": 5})["id"]
    assert flow.status(small) == "completed"
    assert _diagram(flow, small)[1] == {"f1", "f_small"}  # the subprocess's default flow
    heavy = flow.start("flow_conditional_activities", {"amount": 500, "ok": True})["id"]
    assert _open(flow, heavy) == ["approve"]  # the body left once, after its third instance
    states, flows = _diagram(flow, heavy)
    assert flow.variables(heavy)["rounds"] == 3 and states["count"] == "completed"
    assert flows == {"f1", "f_count", "f_approve"} and "end_miscounted" not in states
    flow.complete(heavy, "approve")
    assert flow.status(heavy) == "completed" and _diagram(flow, heavy)[1] >= {"f_ok"}
    assert "end_rejected" not in _diagram(flow, heavy)[0]


def test_a_boundary_event_still_interrupts_a_task_with_conditional_flows(flow):
    flow.deploy("flow_conditional_activities.bpmn")
    rejected = flow.start("flow_conditional_activities", {"amount": 500, "ok": False})["id"]
    late = flow.start("flow_conditional_activities", {"amount": 500, "ok": True})["id"]
    flow.complete(rejected, "approve")
    assert flow.status(rejected) == "completed" and "end_rejected" in _diagram(flow, rejected)[0]
    assert flow.advance(hours=2) == 1
    states, flows = _diagram(flow, late)
    assert flow.status(late) == "completed" and states["end_late"] == "completed"
    assert "f_ok" not in flows and "f_rejected" not in flows and flow.task_states(late)["approve"] == "cancelled"


def test_a_receive_task_with_one_conditional_flow_goes_on_only_when_it_holds(flow):
    from tests.constructs.conftest import MODELS
    text = (MODELS / "evt_receive_task.bpmn").read_text().replace(
        '<bpmn:sequenceFlow id="f2" sourceRef="await_payment" targetRef="booked"/>',
        '<bpmn:sequenceFlow id="f2" sourceRef="await_payment" targetRef="booked">'
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${amount &gt; 5}</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow>')
    flow.call("POST", "/api/v1/processes?name=receive.bpmn", 201, data=text.encode(), content_type="application/xml")
    paid = flow.start("evt_receive_task", {"path": []}, business_key="inv-1")["id"]
    short = flow.start("evt_receive_task", {"path": []}, business_key="inv-2")["id"]
    flow.message("payment_received", {"amount": 10}, correlation="inv-1")
    flow.message("payment_received", {"amount": 1}, correlation="inv-2")
    assert flow.status(paid) == "completed" and flow.variables(paid)["path"] == ["booked"]
    assert flow.status(short) == "incident" and flow.variables(short)["path"] == []
    assert flow.runtime.element_states(short)["elements"]["await_payment"]["state"] == "incident"


def test_a_call_activity_leaves_by_a_condition_on_what_its_out_mappings_returned(flow):
    from tests.constructs.conftest import MODELS
    text = (MODELS / "ext_call_in_out.bpmn").read_text().replace(
        '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end" />',
        '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end">'
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${limit_used &gt; 50}</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow>')
    assert 'xmlns:xsi=' in text
    flow.deploy("ext_called.bpmn")
    flow.call("POST", "/api/v1/processes?name=call.bpmn", 201, data=text.encode(), content_type="application/xml")
    start = {"supplier": "ACME", "order_no": "PO-7"}
    high = flow.start("ext_call_in_out", {**start, "amount": 50})["id"]  # limit_used = 2 * 50 - 1
    low = flow.start("ext_call_in_out", {**start, "amount": 10})["id"]
    assert flow.status(high) == "completed"
    assert flow.status(low) == "incident" and flow.variables(low)["limit_used"] == 19
    assert flow.runtime.element_states(low)["elements"]["call"]["state"] == "incident"

"""Camunda 7 extensions, each asserted with the variable values Camunda gives the same model."""

import io
from datetime import timedelta

from engine import clock
from engine.views import Actor

CHECK_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="ext_bad_builtin" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:scriptTask id="bad" name="Bad" scriptFormat="python">
      <bpmn:script>x = execution.fooBar()</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="due" name="Due" camunda:candidateGroups="reviewers"
        camunda:dueDate="${dateTime().plusFortnights(1).toDate()}" />
    <bpmn:scriptTask id="listened" name="Listened" scriptFormat="python">
      <bpmn:extensionElements>
        <camunda:executionListener class="com.example.Audit" event="start" />
        <camunda:executionListener event="end">
          <camunda:script scriptFormat="groovy">println 'x'</camunda:script>
        </camunda:executionListener>
      </bpmn:extensionElements>
      <bpmn:script>y = 1</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="no_task" name="No task here" scriptFormat="python">
      <bpmn:script>who = task.getAssignee()</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="bad" />
    <bpmn:sequenceFlow id="f2" sourceRef="bad" targetRef="due" />
    <bpmn:sequenceFlow id="f3" sourceRef="due" targetRef="listened" />
    <bpmn:sequenceFlow id="f4" sourceRef="listened" targetRef="no_task" />
    <bpmn:sequenceFlow id="f5" sourceRef="no_task" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_multi_instance_on_scripts_user_tasks_and_subprocesses(flow):
    flow.deploy("ext_multi_instance.bpmn")
    instance = flow.start("ext_multi_instance", {"items": [1, 2, 3], "total": 0, "seen": [], "greeted": [],
                                                 "reviewers": ["ann", "bob"]})
    iid = instance["id"]
    variables = flow.variables(iid)
    # sequential: one instance at a time; loopCounter and the counters as Camunda sets them
    assert variables["total"] == 6
    assert variables["seen"] == [[0, 3, 0, 1], [1, 3, 1, 1], [2, 3, 2, 1]]
    votes = [t for t in flow.open_tasks(iid) if t["spec_id"] == "vote"]
    assert len(votes) == 3  # parallel: all three at once
    for vote in votes[:2]:
        flow.call("POST", f"/api/v1/tasks/{vote['id']}/complete", 200, json={"data": {}})
    # completionCondition nrOfCompletedInstances >= 2: the third vote is cancelled, the flow goes on
    assert flow.task_states(iid)["vote"] in ("cancelled", "completed")
    assert not [t for t in flow.open_tasks(iid) if t["spec_id"] == "vote"]
    assert flow.status(iid) == "completed"
    variables = flow.variables(iid)
    assert sorted(variables["greeted"]) == ["ann", "bob"]  # embedded subprocess per element
    for local in ("item", "reviewer", "loopCounter", "nrOfInstances", "nrOfCompletedInstances"):
        assert local not in variables  # element variables and counters are local to the instances


def test_input_output_parameters_are_local_and_outputs_reach_the_process(flow):
    flow.deploy("ext_input_output.bpmn")
    instance = flow.start("ext_input_output", {"quantity": 3, "unit_price": 10, "reduced_rate": 0.07,
                                               "currency_note": "food"})
    variables = flow.variables(instance["id"])
    assert variables["inside"] == ["EUR", 30, ["0.19", 0.07], {"full": "standard", "reduced": "reduced food"}]
    assert variables["gross"] == 35.7
    assert variables["summary"] == "standard EUR"
    for local in ("currency", "net", "rates", "labels"):
        assert local not in variables


def test_script_result_variable_is_the_last_expression(flow):
    flow.deploy("ext_result_variable.bpmn")
    instance = flow.start("ext_result_variable", {"values": [1, 2, 3], "offset": 100})
    variables = flow.variables(instance["id"])
    assert variables["sum"] == 112
    assert variables["doubled"] == [2, 4, 6]


def test_call_activity_passes_only_mapped_variables(flow):
    flow.deploy("ext_called.bpmn", "ext_call_in_out.bpmn")
    instance = flow.start("ext_call_in_out", {"supplier": "ACME", "amount": 50, "order_no": "PO-7",
                                              "secret": "not passed"})
    assert flow.status(instance["id"]) == "completed"
    variables = flow.variables(instance["id"])
    assert variables["supplier_verdict"] == "ACME ok up to 100"
    assert variables["limit_used"] == 99
    assert variables["called_business_key"] == "PO-7"  # camunda:in businessKey
    # only mapped variables cross: the called process's own variables stay there
    assert "verdict" not in variables and "name" not in variables and "saw_secret" not in variables


def test_error_code_and_message_variables_are_set_on_catch(flow):
    flow.deploy("ext_error_variables.bpmn")
    instance = flow.start("ext_error_variables")
    assert flow.status(instance["id"]) == "completed"
    variables = flow.variables(instance["id"])
    assert variables["code"] == "E_LATE"
    assert variables["message"] == "delivery is late"
    assert variables["handled"] == "E_LATE: delivery is late"


def test_initiator_is_the_starting_user(flow):
    flow.deploy("ext_initiator.bpmn")
    instance = flow.start("ext_initiator")
    assert flow.variables(instance["id"])["starter"] == "lena.lead"
    assert flow.open_task(instance["id"], "follow_up")["assignee"] == "lena.lead"
    flow.complete(instance["id"], "follow_up")
    assert flow.status(instance["id"]) == "completed"


def test_script_listeners_run_with_execution_and_task(flow):
    flow.deploy("ext_listeners.bpmn")
    instance = flow.start("ext_listeners", {"reviewer": "rita.reviewer"})
    iid = instance["id"]
    variables = flow.variables(iid)
    # Camunda's order: start listener, the script, end listener, then the outgoing flow's take listener
    assert variables["log"] == ["start prepare", "script", "end prepare", "take f2"]
    assert variables["created_for"] == "review/Review"
    task = flow.open_task(iid, "review")
    assert task["assignee"] == "rita.reviewer"  # set by the create listener
    flow.call("POST", f"/api/v1/tasks/{task['id']}/complete", 200, json={"data": {}},
              headers=flow.token("rita.reviewer"))
    assert flow.variables(iid)["completed_by"] == "rita.reviewer"
    assert flow.variables(iid)["review_ended"] is True  # an expression listener
    assert flow.status(iid) == "completed"


def test_juel_built_ins_execution_and_date_time(flow):
    flow.deploy("ext_juel_builtins.bpmn")
    started_at = clock.now()
    instance = flow.start("ext_juel_builtins", {"x": 41}, business_key="ORDER-9")
    iid = instance["id"]
    variables = flow.variables(iid)
    assert variables["same"] is True and variables["y"] == 42
    assert variables["key"] == "ORDER-9" and variables["instance"] == iid
    assert variables["tomorrow"][:10] == (started_at + timedelta(days=1)).date().isoformat()
    task = flow.open_task(iid, "approve")
    assert task["due_at"][:10] == (started_at + timedelta(days=2)).date().isoformat()
    flow.complete(iid, "approve")
    assert flow.status(iid) == "running"  # the dateTime() timer waits an hour
    flow.advance(hours=1, minutes=1)
    assert flow.status(iid) == "completed"


def test_deploy_refuses_unknown_built_ins_and_java_listeners(flow, tmp_path):
    response = flow.client.post("/api/v1/processes", headers=flow.headers, content_type="multipart/form-data",
                                data={"file": [(io.BytesIO(CHECK_MODEL.encode()), "bad.bpmn")]})
    assert response.status_code == 422, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "execution.fooBar()" in text and "scriptTask bad" in text
    assert "dateTime().plusFortnights()" in text
    assert "com.example.Audit" in text and "groovy" in text
    assert "task.getAssignee()" in text and "only in task listeners" in text


def test_sequential_multi_instance_call_activity_and_user_task(flow):
    flow.deploy("ext_mi_called.bpmn", "ext_multi_instance_call.bpmn")
    instance = flow.start("ext_multi_instance_call", {"orders": ["A-1", "B-2", "C-3"], "verdicts": [],
                                                      "signers": ["lena.lead", "rita.reviewer"]})
    iid = instance["id"]
    # one called instance per order, in order, each adding to the process variable through in/out
    assert flow.variables(iid)["verdicts"] == ["ok A-1", "ok B-2", "ok C-3"]
    # sequential user task: one at a time, the assignee picked by loopCounter
    signs = [t for t in flow.open_tasks(iid) if t["spec_id"] == "sign"]
    assert [t["assignee"] for t in signs] == ["lena.lead"]
    flow.complete(iid, "sign")
    signs = [t for t in flow.open_tasks(iid) if t["spec_id"] == "sign"]
    assert [t["assignee"] for t in signs] == ["rita.reviewer"]
    flow.call("POST", f"/api/v1/tasks/{signs[0]['id']}/complete", 200, json={"data": {}},
              headers=flow.token("rita.reviewer"))
    assert flow.status(iid) == "completed"
    assert "order" not in flow.variables(iid) and "loopCounter" not in flow.variables(iid)


def test_call_activity_all_variables_and_local_only(flow):
    flow.deploy("ext_all_called.bpmn", "ext_local_called.bpmn", "ext_call_all_variables.bpmn")
    instance = flow.start("ext_call_all_variables", {"a": 1})
    assert flow.status(instance["id"]) == "completed"
    variables = flow.variables(instance["id"])
    assert variables["b"] == 2  # out variables="all" brought the called process's variable back
    assert variables["seen_by_local"] == ["extra"]  # local="true": only the call activity's input parameter
    assert "extra" not in variables
    # camunda:out local="true" sets a variable of the call activity only; its output parameter maps it on
    assert "seen_local" not in variables and variables["seen_count"] == 1


def test_input_output_on_a_user_task_and_a_subprocess(flow):
    flow.deploy("ext_input_output_activities.bpmn")
    instance = flow.start("ext_input_output_activities", {"manager": "rita.reviewer", "base": 5})
    iid = instance["id"]
    task = flow.open_task(iid, "approve")
    assert task["assignee"] == "rita.reviewer"  # the assignee expression read the input parameter
    assert "approver" not in flow.variables(iid)
    flow.call("POST", f"/api/v1/tasks/{task['id']}/complete", 200, json={"data": {}},
              headers=flow.token("rita.reviewer"))
    assert flow.status(iid) == "completed"
    variables = flow.variables(iid)
    assert variables["approved_by"] == "rita.reviewer"
    assert variables["result"] == 15 and variables["final"] == 16
    assert "approver" not in variables and "factor" not in variables


def test_a_failing_input_parameter_is_an_incident_and_a_retry_evaluates_it_again(flow):
    flow.deploy("ext_input_failure.bpmn")
    instance = flow.start("ext_input_failure")
    iid = instance["id"]
    assert flow.status(iid) == "incident"
    assert "input parameter 'doubled'" in flow.incidents(iid)[0]["message"]
    flow.runtime.retry(iid, Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead"), {"amount": 20})
    assert flow.status(iid) == "completed"
    variables = flow.variables(iid)
    assert variables["result"] == 41 and "doubled" not in variables

"""The baseline every other construct builds on: a user task, then a script, then the end."""


def test_user_task_then_script_runs_to_the_end(flow):
    assert flow.deploy("user_task_basic.bpmn")[0]["key"] == "user_task_basic"
    instance = flow.start("user_task_basic")
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["review"]
    flow.complete(instance["id"], "review")
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["path"] == ["review", "mark"]


def test_two_flows_without_conditions_leave_a_task_in_parallel(flow):
    """BPMN's uncontrolled flow, as Camunda runs it: no gateway, both paths start when the task ends."""
    flow.deploy("flow_uncontrolled_split.bpmn")
    instance = flow.start("flow_uncontrolled_split")
    flow.complete(instance["id"], "review")
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["archive"]
    assert flow.variables(instance["id"])["notified"] is True  # the other path ran to the join
    flow.complete(instance["id"], "archive")
    assert flow.status(instance["id"]) == "completed"
    # the diagram shows both flows into the join, the one that arrived first too
    flows = set(flow.runtime.element_states(instance["id"])["flows"])
    assert flows == {"f1", "f2", "f3", "f4", "f5", "f6"}

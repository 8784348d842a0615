"""The baseline every other construct builds on: a user task, then a script, then the end."""


def test_user_task_then_script_runs_to_the_end(flow):
    assert flow.deploy("user_task_basic.bpmn")[0]["key"] == "user_task_basic"
    instance = flow.start("user_task_basic")
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["review"]
    flow.complete(instance["id"], "review")
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["path"] == ["review", "mark"]

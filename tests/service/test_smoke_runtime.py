from tests.conftest import FIXTURES


def test_simple_review_runs_to_completion(runtime, lead, reviewer):
    results = runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    assert [(r.key, r.version, r.unchanged) for r in results] == [("simple_review", 1, False)]
    instance = runtime.start("simple_review", {"reference": "C-1"}, lead)
    assert instance.status == "running"
    task = runtime.tasks(reviewer)[0]
    instance = runtime.complete(task.id, reviewer, {"amount": "500", "urgent": False})
    approve = [t for t in instance.tasks if t.state == "open"][0]
    assert approve.spec_id == "Task_Approve"
    instance = runtime.complete(approve.id, lead, {"decision": "approve"})
    assert instance.status == "completed"
    assert instance.data["amount"] == 500 and instance.data["decision"] == "approve"

"""Process-scoped variables as Camunda 7 keeps them: a write in any branch or boundary path is seen
by the whole instance at once."""


def test_a_parallel_branch_sees_the_other_branchs_write(flow):
    flow.deploy("var_parallel_write.bpmn")
    instance = flow.start("var_parallel_write", {"path": []})
    # set_go ran in the other branch while 'wait' was open: Camunda's gateway after 'wait' sees go.
    flow.complete(instance["id"], "wait")
    assert flow.status(instance["id"]) == "completed"
    variables = flow.variables(instance["id"])
    assert variables["go"] is True
    assert variables["path"] == ["set_go", "seen"]


def test_a_non_interrupting_boundary_path_counts_in_the_process_scope(flow):
    flow.deploy("var_boundary_counter.bpmn")
    instance = flow.start("var_boundary_counter")
    flow.advance(hours=1, minutes=1)
    assert flow.variables(instance["id"])["fired"] == 1
    flow.advance(hours=1)
    assert flow.variables(instance["id"])["fired"] == 2
    assert flow.open_task(instance["id"], "work")
    flow.complete(instance["id"], "work")
    variables = flow.variables(instance["id"])
    assert variables["fired"] == 2
    assert variables["seen_at_end"] == 2  # the main path read the counter the boundary path wrote
    assert flow.status(instance["id"]) == "completed"


def test_a_write_inside_an_embedded_subprocess_is_seen_by_a_parallel_branch(flow):
    flow.deploy("var_subprocess_write.bpmn")
    instance = flow.start("var_subprocess_write")
    flow.complete(instance["id"], "inner_work")
    flow.complete(instance["id"], "outer_wait")
    assert flow.status(instance["id"]) == "completed"
    variables = flow.variables(instance["id"])
    assert variables["found"] is True and variables["outer_saw"] is True


def test_a_non_interrupting_event_subprocess_counts_in_the_process_scope(flow):
    flow.deploy("var_event_subprocess_counter.bpmn")
    instance = flow.start("var_event_subprocess_counter")
    flow.advance(hours=1, minutes=1)
    assert flow.variables(instance["id"])["ticks"] == 1
    flow.advance(hours=1)
    assert flow.variables(instance["id"])["ticks"] == 2
    flow.complete(instance["id"], "work")
    variables = flow.variables(instance["id"])
    assert variables["ticks_at_end"] == 2  # the main flow read what the event subprocess wrote
    assert flow.status(instance["id"]) == "completed"


def test_a_message_payload_is_a_process_variable_every_branch_sees(flow):
    flow.deploy("var_message_payload.bpmn")
    instance = flow.start("var_message_payload")
    flow.message("supplier_reply", {"offer": 120})
    flow.complete(instance["id"], "review")
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["review_saw"] == 120

"""Events as BPMN 2.0 and Camunda 7 run them: terminate, error and escalation ends, event subprocesses,
the event-based gateway, signals (broadcast across instances), messages (catch, throw, start, receive
task), conditional events, and tasks that pass through (manual, undefined)."""

from __future__ import annotations

START = {"path": []}


def open_ids(flow, instance_id):
    return sorted(t["spec_id"] for t in flow.open_tasks(instance_id))


# ---------------------------------------------------------------- terminate
def test_terminate_end_event_ends_the_instance_and_cancels_open_tasks(flow):
    flow.deploy("evt_terminate.bpmn")
    i = flow.start("evt_terminate", START)["id"]
    assert open_ids(flow, i) == ["decide", "wait"]
    flow.complete(i, "decide")
    assert flow.status(i) == "completed"
    assert flow.task_states(i) == {"decide": "completed", "wait": "cancelled"}


def test_terminate_end_event_in_a_subprocess_ends_only_that_subprocess(flow):
    flow.deploy("evt_terminate_sub.bpmn")
    i = flow.start("evt_terminate_sub", START)["id"]
    assert open_ids(flow, i) == ["inner_go", "inner_wait"]
    flow.complete(i, "inner_go")
    assert flow.status(i) == "running"
    assert open_ids(flow, i) == ["after"]
    assert flow.task_states(i)["inner_wait"] == "cancelled"
    flow.complete(i, "after")
    assert flow.status(i) == "completed"


# ---------------------------------------------------------------- error and escalation end events
def test_error_end_event_without_a_catcher_ends_like_a_none_end_event(flow):
    flow.deploy("evt_error_end_uncaught.bpmn")
    i = flow.start("evt_error_end_uncaught", START)["id"]
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["mark"]
    assert flow.incidents(i) == []


def test_error_end_event_in_a_subprocess_is_caught_by_the_boundary_event(flow):
    flow.deploy("evt_error_end_caught.bpmn")
    i = flow.start("evt_error_end_caught", START)["id"]
    flow.complete(i, "work")
    assert open_ids(flow, i) == ["handle"]
    flow.complete(i, "handle")
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == []  # the normal path after the subprocess was not taken


def test_escalation_without_a_catcher_continues_and_ends_like_a_none_end_event(flow):
    flow.deploy("evt_escalation_uncaught.bpmn")
    i = flow.start("evt_escalation_uncaught", START)["id"]
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["mark"]


def test_escalation_end_event_is_caught_by_a_non_interrupting_boundary_event(flow):
    flow.deploy("evt_escalation_caught.bpmn")
    i = flow.start("evt_escalation_caught", START)["id"]
    assert open_ids(flow, i) == ["lead_review", "sub_work"]
    flow.complete(i, "lead_review")
    flow.complete(i, "sub_work")
    assert flow.status(i) == "completed"


# ---------------------------------------------------------------- event subprocesses
def test_interrupting_timer_event_subprocess_cancels_the_main_flow(flow):
    flow.deploy("evt_esp_timer.bpmn")
    i = flow.start("evt_esp_timer", START)["id"]
    assert flow.advance(minutes=30) == 0
    assert flow.advance(minutes=31) == 1
    assert flow.status(i) == "completed"
    assert flow.task_states(i) == {"work": "cancelled"}
    assert flow.variables(i)["path"] == ["timeout"]


def test_non_interrupting_timer_event_subprocess_runs_beside_the_main_flow(flow):
    flow.deploy("evt_esp_timer_nonint.bpmn")
    i = flow.start("evt_esp_timer_nonint", START)["id"]
    assert flow.advance(hours=2) == 1
    assert open_ids(flow, i) == ["remind", "work"]
    flow.complete(i, "remind")
    assert flow.status(i) == "running"
    flow.complete(i, "work")
    assert flow.status(i) == "completed"


def test_waiting_timer_event_subprocess_ends_with_its_process(flow):
    flow.deploy("evt_esp_timer_nonint.bpmn")
    i = flow.start("evt_esp_timer_nonint", START)["id"]
    flow.complete(i, "work")
    assert flow.status(i) == "completed"
    assert flow.advance(hours=2) == 0


def test_interrupting_message_event_subprocess_cancels_the_main_flow(flow):
    flow.deploy("evt_esp_message.bpmn")
    i = flow.start("evt_esp_message", START, business_key="order-7")["id"]
    assert flow.message("cancel_request", {"reason": "duplicate"}, correlation="order-7")["instance_ids"] == [i]
    assert flow.status(i) == "completed"
    assert flow.task_states(i) == {"work": "cancelled"}
    assert flow.variables(i)["path"] == ["cancelled"]
    assert flow.variables(i)["reason"] == "duplicate"


def test_non_interrupting_signal_event_subprocess(flow):
    flow.deploy("evt_esp_signal.bpmn")
    i = flow.start("evt_esp_signal", START)["id"]
    assert flow.signal("audit")["instance_ids"] == [i]
    assert open_ids(flow, i) == ["audit_task", "work"]
    assert flow.signal("audit")["instance_ids"] == [i]  # each signal starts the event subprocess again
    assert open_ids(flow, i) == ["audit_task", "audit_task", "work"]
    flow.complete(i, "audit_task")
    flow.complete(i, "work")
    assert flow.status(i) == "running"  # a started event subprocess is part of its scope until it ends
    flow.complete(i, "audit_task")
    assert flow.status(i) == "completed"
    assert flow.signal("audit")["instance_ids"] == []


def test_error_event_subprocess_catches_an_error_end_event(flow):
    flow.deploy("evt_esp_error.bpmn")
    i = flow.start("evt_esp_error", START)["id"]
    flow.complete(i, "work")
    assert open_ids(flow, i) == ["handle"]
    flow.complete(i, "handle")
    assert flow.status(i) == "completed"
    assert flow.incidents(i) == []


def test_non_interrupting_escalation_event_subprocess(flow):
    flow.deploy("evt_esp_escalation.bpmn")
    i = flow.start("evt_esp_escalation", START)["id"]
    assert open_ids(flow, i) == ["help", "work"]
    flow.complete(i, "help")
    flow.complete(i, "work")
    assert flow.status(i) == "completed"


def test_interrupting_conditional_event_subprocess_fires_when_the_variable_changes(flow):
    flow.deploy("evt_esp_conditional.bpmn")
    i = flow.start("evt_esp_conditional", {"path": [], "approved": False})["id"]
    assert open_ids(flow, i) == ["edit"]
    flow.complete(i, "edit", {"approved": True})
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["fast_track"]
    assert "work" not in [t for t, s in flow.task_states(i).items() if s in ("open", "claimed", "completed")]


# ---------------------------------------------------------------- event-based gateway
def _race(flow):
    flow.deploy("evt_event_gateway.bpmn")
    return flow.start("evt_event_gateway", START, business_key="race-1")["id"]


def test_event_gateway_timer_wins(flow):
    i = _race(flow)
    assert flow.advance(hours=2) == 1
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["timer"]
    # the losers' subscriptions are gone: neither the message nor the signal reaches it any more
    flow.message("go", expect=404)
    assert flow.signal("alarm")["instance_ids"] == []


def test_event_gateway_message_wins_and_the_timer_is_cancelled(flow):
    i = _race(flow)
    assert flow.message("go", correlation="race-1")["instance_ids"] == [i]
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["message"]
    assert flow.advance(hours=2) == 0


def test_event_gateway_signal_wins(flow):
    i = _race(flow)
    assert flow.signal("alarm")["instance_ids"] == [i]
    assert flow.variables(i)["path"] == ["signal"]
    assert flow.status(i) == "completed"
    assert flow.advance(hours=2) == 0


# ---------------------------------------------------------------- signals
def test_signal_is_broadcast_to_every_waiting_instance(flow):
    flow.deploy("evt_signal_catch.bpmn")
    a = flow.start("evt_signal_catch", START)["id"]
    b = flow.start("evt_signal_catch", START)["id"]
    assert sorted(flow.signal("alarm", {"level": 3})["instance_ids"]) == sorted([a, b])
    for i in (a, b):
        assert flow.status(i) == "completed"
        assert flow.variables(i)["path"] == ["alarmed"]
        assert flow.variables(i)["level"] == 3


def test_signal_nobody_waits_for_is_200_with_no_instances(flow):
    assert flow.signal("nobody-listens")["instance_ids"] == []


def test_signal_throw_reaches_other_instances(flow):
    flow.deploy("evt_signal_catch.bpmn", "evt_signal_throw.bpmn")
    waiting = flow.start("evt_signal_catch", START)["id"]
    thrower = flow.start("evt_signal_throw", START)["id"]
    assert flow.status(thrower) == "completed"
    assert flow.variables(thrower)["path"] == ["raised"]
    assert flow.status(waiting) == "completed"
    assert flow.variables(waiting)["path"] == ["alarmed"]


def test_signal_throw_with_no_catcher_just_continues(flow):
    flow.deploy("evt_signal_throw.bpmn")
    thrower = flow.start("evt_signal_throw", START)["id"]
    assert flow.status(thrower) == "completed"


def test_signal_end_event_reaches_other_instances_and_starts_signal_start_processes(flow):
    flow.deploy("evt_signal_catch.bpmn", "evt_signal_end.bpmn", "evt_signal_start.bpmn")
    waiting = flow.start("evt_signal_catch", START)["id"]
    thrower = flow.start("evt_signal_end", START)["id"]
    flow.complete(thrower, "work")
    assert flow.status(thrower) == "completed"
    assert flow.status(waiting) == "completed"
    started = flow.runtime.instances(key="evt_signal_start")
    assert len(started) == 1


def test_signal_start_event_starts_an_instance(flow):
    flow.deploy("evt_signal_start.bpmn")
    ids = flow.signal("alarm", {"level": 5})["instance_ids"]
    assert len(ids) == 1
    assert open_ids(flow, ids[0]) == ["respond"]
    assert flow.variables(ids[0])["level"] == 5


def test_interrupting_boundary_signal_cancels_the_task(flow):
    flow.deploy("evt_boundary_signal.bpmn")
    i = flow.start("evt_boundary_signal", START)["id"]
    assert flow.signal("stop")["instance_ids"] == [i]
    assert flow.status(i) == "completed"
    assert flow.task_states(i) == {"work": "cancelled"}
    assert flow.variables(i)["path"] == ["halt"]


def test_signals_need_a_lead(flow):
    worker = flow.token("rita.reviewer")
    flow.call("POST", "/api/v1/signals", 403, headers=worker, json={"name": "alarm"})
    flow.call("POST", "/api/v1/signals", 422, json={"data": {}})


# ---------------------------------------------------------------- messages
def test_non_interrupting_boundary_message_keeps_the_task(flow):
    flow.deploy("evt_boundary_message.bpmn")
    i = flow.start("evt_boundary_message", START)["id"]
    assert flow.message("nudge")["instance_ids"] == [i]
    assert open_ids(flow, i) == ["follow_up", "work"]
    assert flow.message("nudge")["instance_ids"] == [i]  # it stays armed while the task is active
    assert open_ids(flow, i) == ["follow_up", "follow_up", "work"]
    flow.complete(i, "work")
    flow.message("nudge", expect=404)  # the task is done: nothing waits any more
    flow.complete(i, "follow_up")
    flow.complete(i, "follow_up")
    assert flow.status(i) == "completed"


def test_receive_task_waits_for_its_message(flow):
    flow.deploy("evt_receive_task.bpmn")
    i = flow.start("evt_receive_task", START, business_key="inv-1")["id"]
    assert flow.status(i) == "running"
    assert flow.message("payment_received", {"amount": 10}, correlation="inv-1")["instance_ids"] == [i]
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["booked"]
    assert flow.variables(i)["amount"] == 10


def test_message_starts_a_new_instance_when_none_waits(flow):
    flow.deploy("evt_message_start.bpmn")
    ids = flow.message("order_placed", {"order": "A-1"})["instance_ids"]
    assert len(ids) == 1
    assert open_ids(flow, ids[0]) == ["handle_order"]
    assert flow.variables(ids[0])["order"] == "A-1"
    keyed = flow.message("order_placed", {"order": "A-2"}, correlation="order-A-2")["instance_ids"]
    assert len(keyed) == 1 and keyed != ids
    assert flow.instance(keyed[0])["business_key"] == "order-A-2"
    flow.message("no_such_message", expect=404)


def test_message_throw_delivers_its_payload_to_the_waiting_instance(flow):
    flow.deploy("evt_receive_task.bpmn", "evt_message_throw.bpmn")
    receiver = flow.start("evt_receive_task", START)["id"]
    sender = flow.start("evt_message_throw", START)["id"]
    assert flow.status(sender) == "completed"
    assert flow.variables(sender)["path"] == ["sent"]
    assert flow.status(receiver) == "completed"
    assert flow.variables(receiver)["amount"] == 42


def test_message_end_event_delivers_and_a_throw_nobody_catches_is_no_error(flow):
    flow.deploy("evt_receive_task.bpmn", "evt_message_end.bpmn")
    lonely = flow.start("evt_message_end", START)["id"]
    assert flow.status(lonely) == "completed"
    receiver = flow.start("evt_receive_task", START)["id"]
    flow.start("evt_message_end", START)
    assert flow.status(receiver) == "completed"
    assert flow.variables(receiver)["amount"] == 7


# ---------------------------------------------------------------- conditional events
def test_intermediate_conditional_event_waits_while_false_and_passes_when_true(flow):
    flow.deploy("evt_conditional_catch.bpmn")
    waiting = flow.start("evt_conditional_catch", {"path": [], "ready": False}, business_key="c-1")["id"]
    passing = flow.start("evt_conditional_catch", {"path": [], "ready": False}, business_key="c-2")["id"]
    assert flow.message("update", {"ready": False}, correlation="c-1")["instance_ids"] == [waiting]
    assert flow.message("update", {"ready": True}, correlation="c-2")["instance_ids"] == [passing]
    assert flow.status(waiting) == "running" and open_ids(flow, waiting) == []
    assert flow.variables(waiting)["path"] == []
    assert open_ids(flow, passing) == ["check"]
    assert flow.variables(passing)["path"] == ["go"]


def test_boundary_conditional_event_interrupts_when_the_variable_holds(flow):
    flow.deploy("evt_boundary_conditional.bpmn")
    calm = flow.start("evt_boundary_conditional", {"path": [], "urgent": False})["id"]
    flow.complete(calm, "work", {"urgent": False})
    assert open_ids(flow, calm) == ["normal"]
    i = flow.start("evt_boundary_conditional", {"path": [], "urgent": False})["id"]
    flow.complete(i, "work", {"urgent": True})
    assert open_ids(flow, i) == ["urgent_task"]
    assert flow.task_states(i).get("normal") in (None, "cancelled")
    flow.complete(i, "urgent_task")
    assert flow.status(i) == "completed"


# ---------------------------------------------------------------- pass-through tasks
def test_manual_and_undefined_tasks_pass_through(flow):
    flow.deploy("evt_manual_task.bpmn")
    i = flow.start("evt_manual_task", START)["id"]
    assert flow.status(i) == "completed"
    assert flow.variables(i)["path"] == ["after"]
    assert flow.task_states(i) == {}


def test_message_thrown_in_a_called_process_reaches_the_waiting_instance(flow):
    flow.deploy("evt_receive_task.bpmn", "evt_message_throw.bpmn", "evt_call_throw.bpmn")
    receiver = flow.start("evt_receive_task", START)["id"]
    caller = flow.start("evt_call_throw", START)["id"]
    assert flow.status(caller) == "completed"
    assert flow.variables(caller)["path"][-1] == "back"
    assert flow.status(receiver) == "completed"
    assert flow.variables(receiver)["amount"] == 42


def test_signal_thrown_reaches_its_own_instance_and_the_others(flow):
    flow.deploy("evt_signal_catch.bpmn", "evt_signal_internal.bpmn")
    other = flow.start("evt_signal_catch", START)["id"]
    i = flow.start("evt_signal_internal", START)["id"]
    assert open_ids(flow, i) == ["go"]
    flow.complete(i, "go")
    assert open_ids(flow, i) == ["after_alarm"]
    assert flow.status(other) == "completed"
    flow.complete(i, "after_alarm")
    assert flow.status(i) == "completed"


def test_error_end_event_in_a_called_process_is_caught_on_the_call_activity(flow):
    flow.deploy("evt_error_end_uncaught.bpmn", "evt_error_call.bpmn")
    i = flow.start("evt_error_call", START)["id"]
    assert open_ids(flow, i) == ["handle"]
    flow.complete(i, "handle")
    assert flow.status(i) == "completed"
    assert "normal" not in flow.variables(i)["path"]


def test_interrupting_event_subprocess_in_a_subprocess_ends_only_that_subprocess(flow):
    flow.deploy("evt_esp_in_subprocess.bpmn")
    i = flow.start("evt_esp_in_subprocess", START)["id"]
    assert open_ids(flow, i) == ["inner"]
    assert flow.advance(hours=2) == 1
    assert open_ids(flow, i) == ["after"]
    assert flow.task_states(i)["inner"] == "cancelled"
    assert flow.variables(i)["path"] == ["timeout"]
    flow.complete(i, "after")
    assert flow.status(i) == "completed"


def test_non_interrupting_conditional_event_subprocess_fires_once_when_the_condition_becomes_true(flow):
    flow.deploy("evt_esp_conditional_nonint.bpmn")
    i = flow.start("evt_esp_conditional_nonint", {"path": [], "level": 1})["id"]
    assert open_ids(flow, i) == ["edit"]
    flow.complete(i, "edit", {"level": 7})
    assert open_ids(flow, i) == ["notify", "work"]
    flow.complete(i, "notify")
    assert open_ids(flow, i) == ["work"]  # still true, but nothing changed it: no second start
    flow.complete(i, "work")
    assert flow.status(i) == "completed"


def test_interrupting_boundary_message_cancels_the_task_and_carries_its_data(flow):
    flow.deploy("evt_boundary_message_int.bpmn")
    i = flow.start("evt_boundary_message_int", START, business_key="case-9")["id"]
    assert flow.message("withdrawn", {"why": "customer"}, correlation="case-9")["instance_ids"] == [i]
    assert flow.status(i) == "completed"
    assert flow.task_states(i) == {"work": "cancelled"}
    assert flow.variables(i)["path"] == ["archive"]
    assert flow.variables(i)["why"] == "customer"


def test_non_interrupting_boundary_signal_keeps_the_task_and_fires_on_each_signal(flow):
    flow.deploy("evt_boundary_signal_nonint.bpmn")
    i = flow.start("evt_boundary_signal_nonint", START)["id"]
    assert flow.signal("ping")["instance_ids"] == [i]
    assert flow.signal("ping")["instance_ids"] == [i]
    assert open_ids(flow, i) == ["answer", "answer", "work"]
    flow.complete(i, "work")
    assert flow.signal("ping")["instance_ids"] == []
    flow.complete(i, "answer")
    flow.complete(i, "answer")
    assert flow.status(i) == "completed"


def test_signal_thrown_when_a_timer_fires_reaches_the_waiting_instances(flow):
    flow.deploy("evt_signal_catch.bpmn", "evt_timer_signal.bpmn")
    waiting = flow.start("evt_signal_catch", START)["id"]
    thrower = flow.start("evt_timer_signal", START)["id"]
    assert flow.status(waiting) == "running"
    assert flow.advance(hours=2) == 1
    assert flow.status(thrower) == "completed"
    assert flow.status(waiting) == "completed"
    assert flow.variables(waiting)["path"] == ["alarmed"]

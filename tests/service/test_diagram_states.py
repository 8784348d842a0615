"""Runtime.element_states: what the instance page's diagram marks (DESIGN §8 diagram hooks)."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine

from engine.runtime import Actor
from tests.fixtures.runtime.helpers import LEAD, REVIEWER, deploy, only_open
from tests.service.helpers_process_library import COMPLAINT, PROCESSES

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SERVICE = Actor("carl.service", frozenset({"customer_service", "employee"}), "employee")


def test_boundary_timer_waits_with_its_due_time_beside_the_active_task(runtime):
    deploy(runtime, "boundary")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_boundary", {}, LEAD)
    diagram = runtime.element_states(instance.id)
    elements = diagram["elements"]
    assert elements["StartEvent_1"]["state"] == "completed"
    assert elements["Task_Answer"]["state"] == "active"
    assert elements["Timer_Late"]["state"] == "waiting"
    assert elements["Timer_Late"]["waiting_for"] == "timer"
    assert elements["Timer_Late"]["due"].startswith("2026-03-02T09:00")
    assert "Task_Escalated" not in elements and "EndEvent_1" not in elements
    assert diagram["flows"] == ["F1"]
    # the task's id ties the element to its human task (assignee, due) and its incidents
    assert only_open(instance).id in elements["Task_Answer"]["task_ids"]


def test_complaint_marks_the_path_taken_gateways_included(runtime):
    runtime.deploy_paths([PROCESSES])
    instance = runtime.start("complaint_to_improvement", dict(COMPLAINT, reference="C-1"), Actor.system("test"))
    ack = next(t for t in instance.tasks if t.spec_id == "acknowledge")
    runtime.complete(ack.id, SERVICE, {"acknowledgement_message": "Thank you, we are on it.",
                                       "acknowledgement_channel": "email"})
    diagram = runtime.element_states(instance.id)
    states = {k: v["state"] for k, v in diagram["elements"].items()}
    for done in ("complaint_received", "register", "acknowledge", "record_ack"):
        assert states[done] == "completed", states
    assert states["triage"] == "active"
    assert "valid_gw" not in states and "close_invalid" not in states  # not reached yet
    assert {"flow_complaint_received_to_register", "flow_register_to_acknowledge",
            "flow_acknowledge_to_record_ack", "flow_record_ack_to_triage"} == set(diagram["flows"])


def test_failed_script_is_an_incident_element(runtime):
    deploy(runtime, "script")
    instance = runtime.start("rt_script", {}, LEAD)
    instance = runtime.complete(only_open(instance).id, REVIEWER, {"divisor": "0"})
    assert instance.status == "incident"
    elements = runtime.element_states(instance.id)["elements"]
    assert elements["Task_Input"]["state"] == "completed"
    assert elements["Script_Calc"]["state"] == "incident"
    assert instance.incidents[0].task_id in elements["Script_Calc"]["task_ids"]

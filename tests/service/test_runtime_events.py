"""Timers (intermediate and interrupting boundary) and message correlation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine.errors import ConflictError, NotFoundError
from storage.models import ProcessInstance, Timer
from tests.fixtures.runtime.helpers import LEAD, REVIEWER, audit_rows, deploy, only_open

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _timers(runtime, instance_id):
    with runtime.db.read() as session:
        return [(t.spec_id, t.state, t.due_at) for t in session.scalars(
            select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.id))]


def test_intermediate_timer_fires_once_when_due(runtime):
    deploy(runtime, "timers")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_wait", {}, LEAD)
        assert instance.status == "running" and instance.tasks == []
        assert _timers(runtime, instance.id) == [("Timer_Wait", "waiting", T0 + timedelta(hours=1))]
        assert runtime.fire_due_timers().fired == 0
    with time_machine.travel(T0 + timedelta(minutes=59), tick=False):
        assert runtime.fire_due_timers().fired == 0
        assert runtime.instance(instance.id).tasks == []
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        assert runtime.fire_due_timers().fired == 1
        assert runtime.fire_due_timers().fired == 0  # firing twice fires once
    instance = runtime.instance(instance.id)
    assert only_open(instance).name == "After the wait"
    assert _timers(runtime, instance.id) == [("Timer_Wait", "done", T0 + timedelta(hours=1))]
    fired = [a for a in instance.audit if a.type == "timer_fired"]
    assert len(fired) == 1 and fired[0].actor == "scheduler"
    assert [a.type for a in instance.audit] == ["start", "timer_fired", "task_created"]


def test_boundary_timer_interrupts_the_user_task(runtime):
    deploy(runtime, "boundary")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_boundary", {}, LEAD)
        answer = only_open(instance)
        assert answer.name == "Answer"
        assert _timers(runtime, instance.id) == [("Timer_Late", "waiting", T0 + timedelta(hours=1))]
        assert runtime.fire_due_timers().fired == 0
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        assert runtime.fire_due_timers().fired == 1
        assert runtime.fire_due_timers().fired == 0
    instance = runtime.instance(instance.id)
    states = {t.name: t.state for t in instance.tasks}
    assert states == {"Answer": "cancelled", "Escalated": "open"}
    assert [t.name for t in runtime.tasks(REVIEWER)] == []
    assert [t.name for t in runtime.tasks(LEAD)] == ["Escalated"]
    assert _timers(runtime, instance.id)[0][1] == "done"
    with pytest.raises(ConflictError):
        runtime.complete(answer.id, REVIEWER, {})
    types = [a.type for a in audit_rows(runtime, instance.id)]
    assert types == ["start", "task_created", "timer_fired", "task_cancelled", "task_created"]
    cancelled = audit_rows(runtime, instance.id)[3]
    assert cancelled.task_id == answer.id and cancelled.payload == {"task": "Answer"}


def test_boundary_timer_is_dropped_when_the_task_completes_first(runtime):
    deploy(runtime, "boundary")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_boundary", {}, LEAD)
        instance = runtime.complete(only_open(instance).id, REVIEWER, {})
    assert instance.status == "completed"
    assert _timers(runtime, instance.id)[0][1] == "done"
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        assert runtime.fire_due_timers().fired == 0


def test_message_reaches_only_the_matching_instance(runtime):
    deploy(runtime, "message")
    first = runtime.start("rt_message", {"reference": "C-1"}, LEAD)
    second = runtime.start("rt_message", {"reference": "C-2"}, LEAD)
    assert first.status == second.status == "running" and first.tasks == []
    ids = runtime.correlate_message("customer_reply", "C-2", {"reply": "yes please"}, LEAD)
    assert ids == [second.id]
    second = runtime.instance(second.id)
    assert only_open(second).name == "Read reply"
    assert second.data["reply"] == "yes please"  # message data become process variables
    assert second.data["customer_reply"] == {"reply": "yes please"}  # and the payload, under the message name
    assert runtime.instance(first.id).tasks == []
    # nothing waits for this message any more in C-2
    with pytest.raises(NotFoundError):
        runtime.correlate_message("customer_reply", "C-2", {}, LEAD)
    with pytest.raises(NotFoundError):
        runtime.correlate_message("no_such_message", "C-1", {}, LEAD)
    with pytest.raises(NotFoundError):
        runtime.correlate_message("customer_reply", "C-404", {}, LEAD)
    assert runtime.correlate_message("customer_reply", "C-1", {"reply": "no"}, LEAD) == [first.id]
    assert runtime.instance(first.id).data["reply"] == "no"
    message = [a for a in runtime.instance(first.id).audit if a.type == "message"]
    assert len(message) == 1 and message[0].payload["name"] == "customer_reply"


def test_scheduler_skips_an_instance_being_written(runtime, db):
    deploy(runtime, "timers")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_wait", {}, LEAD)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        if db.dialect == "sqlite":
            # SQLite has one writer at a time: the scheduler simply queues behind it.
            assert runtime.fire_due_timers().fired == 1
            return
        with db.write() as session:  # someone else holds the instance row
            session.scalars(select(ProcessInstance).where(ProcessInstance.id == instance.id)
                            .with_for_update()).one()
            assert runtime.fire_due_timers().fired == 0
        assert runtime.fire_due_timers().fired == 1
    assert only_open(runtime.instance(instance.id)).name == "After the wait"

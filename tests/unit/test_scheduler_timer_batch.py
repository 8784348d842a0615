"""A claimed timer batch fires in one transaction (Runtime.timer_batch): the fast path and the
general path (human tasks, boundary timers) give the same projections as firing one by one, and a
failing instance - or a failing batch - loses nobody else's work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from engine import runtime as runtime_module
from engine.runtime import Runtime
from engine.timer_service import TimerPolicy, fire_due_timers
from storage.models import AuditEvent, HumanTask, Timer
from tests.conftest import FIXTURES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _deploy_and_start(runtime: Runtime, lead) -> dict[str, list[str]]:
    runtime.deploy_paths([FIXTURES / "scheduler" / "timer_wait.bpmn", FIXTURES / "runtime" / "timers.bpmn",
                          FIXTURES / "runtime" / "boundary.bpmn"])
    out: dict[str, list[str]] = {}
    for key in ("timer_wait", "rt_timer_wait", "rt_timer_boundary"):
        out[key] = [runtime.start(key, {"reference": f"{key}-{i}"}, lead).id for i in range(3)]
    return out


def _audit_types(runtime: Runtime, instance_id: str) -> list[str]:
    return [a.type for a in runtime.instance(instance_id).audit]


def test_batch_fires_fast_and_general_path_instances_like_one_by_one(runtime, lead):
    with time_machine.travel(T0, tick=False):
        ids = _deploy_and_start(runtime, lead)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        result = fire_due_timers(runtime, "w1", TimerPolicy(batch=4))
        assert (result.fired, result.instances, result.failed, result.conflicts) == (9, 9, 0, 0)
        assert fire_due_timers(runtime, "w1").fired == 0
    for iid in ids["timer_wait"]:
        assert runtime.instance(iid).status == "completed"
        assert _audit_types(runtime, iid) == ["start", "timer_fired", "end"]
    for iid in ids["rt_timer_wait"]:
        instance = runtime.instance(iid)
        assert instance.status == "running" and [t.name for t in instance.tasks] == ["After the wait"]
        assert _audit_types(runtime, iid) == ["start", "timer_fired", "task_created"]
    for iid in ids["rt_timer_boundary"]:
        states = {t.name: t.state for t in runtime.instance(iid).tasks}
        assert states == {"Answer": "cancelled", "Escalated": "open"}
    with runtime.db.read() as s:
        assert {t.state for t in s.scalars(select(Timer))} == {"done"}
        assert s.scalar(select(func.count()).select_from(Timer).where(Timer.state == "waiting")) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.type == "timer_fired")) == 9


def test_failing_instance_in_a_batch_rolls_back_alone(runtime, lead, monkeypatch):
    with time_machine.travel(T0, tick=False):
        ids = _deploy_and_start(runtime, lead)
    bad_fast, bad_full = ids["timer_wait"][1], ids["rt_timer_wait"][1]
    real_load, real_full = runtime_module.load_state, Runtime._fire_timer_in
    loaded: list[str] = []

    def load_state(raw, *args):  # the fast path fails for one instance
        workflow = real_load(raw, *args)
        if b'"timer_wait-1"' in raw:
            raise RuntimeError("corrupt state")
        loaded.append("x")
        return workflow

    def full(self, session, instance_id, worker, timer_ids):  # the general path fails after writing
        fired = real_full(self, session, instance_id, worker, timer_ids)
        session.flush()
        if instance_id == bad_full:
            raise RuntimeError("late failure")
        return fired

    monkeypatch.setattr(runtime_module, "load_state", load_state)
    monkeypatch.setattr(Runtime, "_fire_timer_in", full)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        result = fire_due_timers(runtime, "w1", TimerPolicy(max_attempts=3))
    assert (result.fired, result.failed) == (7, 2)
    assert runtime.instance(bad_fast).status == "running" and runtime.instance(bad_full).tasks == []
    assert _audit_types(runtime, bad_full) == ["start"]  # its savepoint rolled back
    with runtime.db.read() as s:
        attempts = dict(s.execute(select(Timer.instance_id, Timer.attempts).where(Timer.state == "waiting")).all())
        assert attempts == {bad_fast: 1, bad_full: 1}
        assert s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == "open")) == 2 + 3


def test_a_failing_batch_is_fired_one_by_one(runtime, lead, monkeypatch):
    with time_machine.travel(T0, tick=False):
        ids = _deploy_and_start(runtime, lead)

    def broken(self):
        raise RuntimeError("batch write failed")

    monkeypatch.setattr(runtime_module._TimerBatch, "flush", broken)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        result = fire_due_timers(runtime, "w1")
    assert (result.fired, result.failed) == (9, 0)
    assert all(runtime.instance(i).status == "completed" for i in ids["timer_wait"])
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.type == "timer_fired")) == 9

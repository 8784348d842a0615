"""A claimed timer batch fires in one unit of work (engine/runtime/timers.py): instances with and
without human tasks or boundary timers give the same projections as firing one by one, and a
failing instance - or a failing batch - loses nobody else's work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from engine.runtime import Runtime, projection, spiff
from engine.runtime.timers import TimerPolicy, fire_due_timers
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


def test_batch_fires_every_kind_of_instance_like_one_by_one(runtime, lead):
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
    bad_early, bad_late = ids["timer_wait"][1], ids["rt_timer_wait"][1]
    real_load, real_dump = spiff.load_state, spiff.dump_state

    def load_state(raw, *args):  # one instance cannot even be restored
        if b'"timer_wait-1"' in raw:
            raise RuntimeError("corrupt state")
        return real_load(raw, *args)

    def dump_state(workflow):  # another fails after it fired and its projection was worked out
        if spiff.instance_data(workflow).get("reference") == "rt_timer_wait-1":
            raise RuntimeError("late failure")
        return real_dump(workflow)

    monkeypatch.setattr(spiff, "load_state", load_state)
    monkeypatch.setattr(spiff, "dump_state", dump_state)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        result = fire_due_timers(runtime, "w1", TimerPolicy(max_attempts=3))
    assert (result.fired, result.failed) == (7, 2)
    monkeypatch.setattr(spiff, "load_state", real_load)
    assert runtime.instance(bad_early).status == "running" and runtime.instance(bad_late).tasks == []
    assert _audit_types(runtime, bad_late) == ["start"]  # nothing of its firing was written
    with runtime.db.read() as s:
        attempts = dict(s.execute(select(Timer.instance_id, Timer.attempts).where(Timer.state == "waiting")).all())
        assert attempts == {bad_early: 1, bad_late: 1}
        assert s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == "open")) == 2 + 3


def test_a_failing_batch_is_fired_one_by_one(runtime, lead, monkeypatch):
    with time_machine.travel(T0, tick=False):
        ids = _deploy_and_start(runtime, lead)
    real_write = projection.write

    def write(conn, changes):  # the batch's multi-instance write fails; single instances go through
        if len(changes) > 1:
            raise RuntimeError("batch write failed")
        return real_write(conn, changes)

    monkeypatch.setattr(projection, "write", write)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        result = fire_due_timers(runtime, "w1")
    assert (result.fired, result.failed) == (9, 0)
    assert all(runtime.instance(i).status == "completed" for i in ids["timer_wait"])
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.type == "timer_fired")) == 9


def test_an_instance_that_failed_in_the_batch_takes_an_event_from_its_stored_state(runtime, lead, monkeypatch):
    """In one batch, instance B's firing fails half-way (its workflow already advanced) and instance A's
    timer throws a signal B waits for. The signal reaches B as stored, not the half-fired copy the
    failure left behind: nothing of B's failed attempt is written, and B takes the signal."""
    from engine.runtime import timers

    models = FIXTURES.parent / "constructs" / "models"
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([models / "evt_timer_signal.bpmn", models / "evt_timer_and_signal.bpmn"])
        thrower = runtime.start("evt_timer_signal", {}, lead).id
        receiver = runtime.start("evt_timer_and_signal", {}, lead).id
    original = timers.fire_instance

    def fails_after_firing(uow, row, snapshot, worker, held):
        if row.id != receiver:
            return original(uow, row, snapshot, worker, held)
        loaded = uow.restore(row._mapping, snapshot)
        loaded.leased_timers = {t.id for t in held}
        uow.fire_timers(loaded, timers.SCHEDULER, worker, leased={t.task_id for t in held})
        raise RuntimeError("a bug after the timer fired, before the save")

    monkeypatch.setattr(timers, "fire_instance", fails_after_firing)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        result = fire_due_timers(runtime, "w1", TimerPolicy(batch=10, max_attempts=5))
    assert (result.fired, result.failed) == (1, 1)
    assert runtime.instance(thrower).status == "completed"
    after = runtime.instance(receiver)
    # no audit entry of the failed attempt (its timer_fired); the signal's save found the hour passed
    assert [a.type for a in after.audit if a.type in ("timer_fired", "signal")] == ["signal"]
    assert after.status == "completed"

"""Leased timer firing (engine/runtime/timers.py) on SQLite and PostgreSQL, with time moved by time-machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select, update

from engine.runtime import Runtime, timers
from engine.runtime.timers import TimerPolicy, claim_due_timers, fire_due_timers
from storage.models import AuditEvent, Incident, ProcessInstance, Timer
from tests.conftest import FIXTURES

SCHED = FIXTURES / "scheduler"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _start(runtime: Runtime, lead, n: int) -> list[str]:
    runtime.deploy_paths([SCHED / "timer_wait.bpmn"])
    return [runtime.start("timer_wait", {"reference": f"T-{i}"}, lead).id for i in range(n)]


def _count(db, type_: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.type == type_))


def test_due_timers_fire_once_and_complete_the_instances(runtime, lead):
    with time_machine.travel(T0, tick=False):
        ids = _start(runtime, lead, 3)
        assert fire_due_timers(runtime, "w1").fired == 0  # not due yet
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        result = fire_due_timers(runtime, "w1")
        assert (result.fired, result.instances, result.failed) == (3, 3, 0)
        assert fire_due_timers(runtime, "w1").fired == 0  # nothing fires twice
    assert all(runtime.instance(i).status == "completed" for i in ids)
    assert _count(runtime.db, "timer_fired") == 3
    with runtime.db.read() as s:
        rows = s.scalars(select(Timer)).all()
        assert {t.state for t in rows} == {"done"}


def test_claim_leases_and_a_held_lease_is_skipped(runtime, lead):
    with time_machine.travel(T0, tick=False):
        _start(runtime, lead, 4)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        first = claim_due_timers(runtime.db, "w1", limit=3)
        second = claim_due_timers(runtime.db, "w2", limit=10)
        assert len(first) == 3 and len(second) == 1
        assert not {t for t, _ in first} & {t for t, _ in second}
        # w2 cannot fire w1's timers: fire_timer checks the lease
        tid, iid = first[0]
        assert runtime.fire_timer(iid, "w2", [tid]) == 0
        assert runtime.fire_timer(iid, "w1", [tid]) == 1


def test_expired_lease_of_a_dead_worker_is_taken_over(runtime, lead):
    with time_machine.travel(T0, tick=False):
        ids = _start(runtime, lead, 5)
    later = T0 + timedelta(hours=2)
    with runtime.db.write() as s:  # a worker claimed everything, then died
        s.execute(update(Timer).values(locked_by="dead-worker", locked_until=later + timedelta(minutes=5)))
    with time_machine.travel(later, tick=False):
        assert fire_due_timers(runtime, "w2").fired == 0  # lease still valid
    with time_machine.travel(later + timedelta(minutes=6), tick=False):
        assert fire_due_timers(runtime, "w2").fired == 5
    assert all(runtime.instance(i).status == "completed" for i in ids)
    with runtime.db.read() as s:
        workers = {a.payload["worker"] for a in s.scalars(select(AuditEvent).where(AuditEvent.type == "timer_fired"))}
    assert workers == {"w2"}


def test_failing_instance_is_retried_with_backoff_then_incident(runtime, lead, monkeypatch):
    with time_machine.travel(T0, tick=False):
        ids = _start(runtime, lead, 3)
    bad = ids[1]
    original = timers.fire_instance

    def flaky(uow, row, snapshot, worker, held):
        if row.id == bad:
            raise RuntimeError("database hiccup")
        return original(uow, row, snapshot, worker, held)

    monkeypatch.setattr(timers, "fire_instance", flaky)
    policy = TimerPolicy(backoff=timedelta(seconds=30), max_attempts=3)
    t = T0 + timedelta(hours=2)
    with time_machine.travel(t, tick=False):
        result = fire_due_timers(runtime, "w1", policy)
        assert (result.fired, result.failed) == (2, 1)  # the others went on
        assert fire_due_timers(runtime, "w1", policy).failed == 0  # backing off: not retried yet
    with runtime.db.read() as s:
        timer = s.scalars(select(Timer).where(Timer.instance_id == bad)).one()
        assert timer.attempts == 1 and timer.state == "waiting" and timer.locked_until == t + timedelta(seconds=30)
    with time_machine.travel(t + timedelta(seconds=31), tick=False):
        assert fire_due_timers(runtime, "w1", policy).failed == 1
    with time_machine.travel(t + timedelta(seconds=31 + 59), tick=False):
        assert fire_due_timers(runtime, "w1", policy).failed == 0  # second back-off is 60 s
    with time_machine.travel(t + timedelta(seconds=31 + 61), tick=False):
        result = fire_due_timers(runtime, "w1", policy)
        assert result.failed == 1 and result.incidents == [bad]
    with runtime.db.read() as s:
        timer = s.scalars(select(Timer).where(Timer.instance_id == bad)).one()
        assert timer.state == "failed" and timer.attempts == 3
        incident = s.scalars(select(Incident).where(Incident.instance_id == bad)).one()
        assert "could not fire after 3 attempts" in incident.message and "database hiccup" in incident.message
        assert s.get(ProcessInstance, bad).status == "incident"
    # after the cause is fixed a quality lead retries: the overdue timer fires within the retry itself,
    # and the next scheduler pass has nothing left to fire for it (exactly once)
    monkeypatch.setattr(timers, "fire_instance", original)
    with time_machine.travel(t + timedelta(minutes=5), tick=False):
        runtime.retry(bad, lead)
        assert runtime.instance(bad).status == "completed"
        assert fire_due_timers(runtime, "w1", policy).fired == 0
    fired = [a for a in runtime.instance(bad).audit if a.type == "timer_fired"]
    assert len(fired) == 1 and fired[0].payload == {"worker": "retry", "timer": "Wait"}
    with runtime.db.read() as s:
        assert s.scalars(select(Timer).where(Timer.instance_id == bad)).one().state == "done"


@pytest.mark.parametrize("n", [40])
def test_many_timers_in_small_batches(runtime, lead, n):
    with time_machine.travel(T0, tick=False):
        _start(runtime, lead, n)
    with time_machine.travel(T0 + timedelta(hours=1, seconds=1), tick=False):
        assert fire_due_timers(runtime, "w1", TimerPolicy(batch=7)).fired == n
    assert _count(runtime.db, "timer_fired") == n


def test_a_timer_failure_and_a_completion_ending_its_wait_are_serial(runtime, lead, monkeypatch):
    """A timer fails its last attempt while someone completes the task its boundary timer is attached
    to. The failure is recorded either before the completion (an incident; the completion then works
    from it) or not at all (the timer no longer waits): never decided on timer rows the completion has
    since closed, which left a completed instance with an open incident and its done timer 'failed'."""
    import threading

    from tests.conftest import start_racing
    from tests.fixtures.runtime.helpers import REVIEWER, deploy

    deploy(runtime, "boundary")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_boundary", {}, lead)
    [task] = [t for t in instance.tasks if t.state == "open"]

    def failing(uow, row, snapshot, worker, held):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(timers, "fire_instance", failing)
    held_rows, completion, outcome = timers.timer_queue.held_rows, [], []

    def complete() -> None:
        try:
            outcome.append(runtime.complete(task.id, REVIEWER, {}))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcome.append(exc)

    def held_then_completed(session, timer_ids, worker):  # the completion comes in between
        rows = held_rows(session, timer_ids, worker)
        completion.append(threading.Thread(target=complete))
        start_racing(runtime.db, completion[0], "the completion", sqlite_pause=0.5)  # commits, or waits for our lock
        return rows

    monkeypatch.setattr(timers.timer_queue, "held_rows", held_then_completed)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        fire_due_timers(runtime, "w1", TimerPolicy(max_attempts=1))
        completion[0].join(60)
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    after = runtime.instance(instance.id)
    open_incidents = [i for i in after.incidents if i.resolved_at is None]
    with runtime.db.read() as s:
        timer_state = s.scalars(select(Timer.state).where(Timer.instance_id == instance.id)).one()
    if open_incidents:  # the failure first: the completion saw the incident
        assert (after.status, timer_state) == ("incident", "failed")
    else:  # the completion first: nothing failed that still waited
        assert (after.status, timer_state) == ("completed", "done")

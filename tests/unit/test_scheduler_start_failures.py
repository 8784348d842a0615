"""A timer start whose start fails keeps its slot: retried with back-off, after the timer policy's
max attempts an incident on the schedule that a quality lead re-arms (retry, or a new version)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine.errors import InvalidStateError, NotFoundError, PermissionDeniedError
from engine.runtime import Runtime
from engine.runtime.timers import TimerPolicy
from engine.schedules import list_schedules, retry_schedule, start_due, sync_schedules
from storage.db import Database
from storage.models import AuditEvent
from tests.unit.helpers_schedules import FlakyRuntime, dated_process

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
DUE = T0 + timedelta(hours=1)
POLICY = TimerPolicy(backoff=timedelta(seconds=30), max_attempts=3)


def _deploy(runtime: Runtime, tmp_path, **kwargs) -> None:
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([dated_process(tmp_path, DUE, **kwargs)])
        sync_schedules(runtime.db)


def _pass(runtime: Runtime, at: datetime, worker: str = "w1", policy: TimerPolicy = POLICY) -> int:
    with time_machine.travel(at, tick=False):
        sync_schedules(runtime.db)
        return start_due(runtime, worker, policy)


def _schedule(db: Database):
    [view] = list_schedules(db)
    return view


def _audit(db: Database, type_: str) -> list[dict]:
    with db.read() as s:
        return [e.payload for e in s.scalars(select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.id))]


def test_failed_time_date_start_is_retried_after_backoff_and_starts_once(db, tmp_path):
    flaky = FlakyRuntime(db, failures=1)
    _deploy(flaky, tmp_path)
    t = DUE + timedelta(seconds=1)
    assert _pass(flaky, t) == 0
    view = _schedule(db)
    assert (view.state, view.attempts, view.next_at, view.started) == ("retrying", 1, DUE, 0)
    assert view.retry_at == t + timedelta(seconds=30) and "database hiccup" in view.last_error
    assert _pass(flaky, t + timedelta(seconds=20)) == 0  # backing off
    assert flaky.calls == 1 and flaky.instances(key="weekly_review") == []
    assert _pass(flaky, t + timedelta(seconds=31)) == 1  # the slot was kept: it starts now
    assert _pass(flaky, t + timedelta(days=1)) == 0  # and only once
    [instance] = flaky.instances(key="weekly_review")
    assert instance["process_version"] == 1
    assert flaky.instance(instance["id"]).audit[0].actor == "scheduler"
    view = _schedule(db)
    assert (view.state, view.started, view.attempts, view.last_error, view.next_at) == ("done", 1, 0, None, None)
    [failed] = _audit(db, "schedule_failed")
    assert failed["key"] == "weekly_review" and failed["attempt"] == 1 and failed["incident"] is False
    assert "database hiccup" in failed["message"]


def test_after_max_attempts_the_schedule_is_in_incident_until_a_lead_retries(db, tmp_path, lead, reviewer):
    flaky = FlakyRuntime(db, failures=99)
    _deploy(flaky, tmp_path)
    t = DUE + timedelta(seconds=1)
    assert _pass(flaky, t) == 0
    assert _pass(flaky, t + timedelta(seconds=31)) == 0  # attempt 2 (first back-off 30 s)
    assert _pass(flaky, t + timedelta(seconds=31 + 59)) == 0  # second back-off is 60 s
    assert flaky.calls == 2
    assert _pass(flaky, t + timedelta(seconds=31 + 61)) == 0  # attempt 3 of 3
    [incident] = list_schedules(db, state="incident")
    assert incident.key == "weekly_review" and incident.state == "incident" and incident.attempts == 3
    assert incident.failed_at == t + timedelta(seconds=92) and "database hiccup" in incident.last_error
    assert incident.next_at == DUE  # the slot is still there
    assert _pass(flaky, t + timedelta(days=1)) == 0 and flaky.calls == 3  # an incident is not retried by itself
    assert [(a["attempt"], a["incident"]) for a in _audit(db, "schedule_failed")] == [(1, False), (2, False), (3, True)]

    with pytest.raises(PermissionDeniedError):
        retry_schedule(db, "weekly_review", reviewer)
    with pytest.raises(NotFoundError):
        retry_schedule(db, "nope", lead)
    flaky.failures = 0  # the cause is fixed
    with time_machine.travel(t + timedelta(days=1, minutes=1), tick=False):
        view = retry_schedule(db, "weekly_review", lead)
    assert (view.state, view.attempts, view.last_error) == ("scheduled", 0, None)
    assert list_schedules(db, state="incident") == []
    with pytest.raises(InvalidStateError):
        retry_schedule(db, "weekly_review", lead)
    assert _pass(flaky, t + timedelta(days=1, minutes=2)) == 1
    assert len(flaky.instances(key="weekly_review")) == 1 and _schedule(db).state == "done"
    assert _audit(db, "schedule_retry")[0]["key"] == "weekly_review"


def test_deploying_a_new_version_rearms_a_schedule_in_incident(db, tmp_path):
    flaky = FlakyRuntime(db, failures=99)
    _deploy(flaky, tmp_path)
    assert _pass(flaky, DUE, policy=TimerPolicy(max_attempts=1)) == 0
    assert _schedule(db).state == "incident"
    flaky.failures = 0
    later = DUE + timedelta(hours=2)
    with time_machine.travel(later, tick=False):  # the lead's fix: a new version
        flaky.deploy_paths([dated_process(tmp_path, DUE, name="Review complaints")])
    assert _pass(flaky, later + timedelta(seconds=1)) == 1  # the pass moves the schedule, then starts it
    [instance] = flaky.instances(key="weekly_review")
    assert instance["process_version"] == 2
    assert _schedule(db).state == "done" and _audit(db, "schedule_rearmed") == [
        {"key": "weekly_review", "version": 2, "by": "deploy"}]


def test_a_failing_schedule_does_not_hold_up_the_others(db, tmp_path):
    flaky = FlakyRuntime(db, failures=1)
    _deploy(flaky, tmp_path, key="first_review")
    _deploy(flaky, tmp_path, key="second_review")
    assert _pass(flaky, DUE) == 1  # the first start (in key order) fails, the second goes on
    states = {v.key: v.state for v in list_schedules(db)}
    assert states == {"first_review": "retrying", "second_review": "done"}


def test_two_schedulers_start_each_due_schedule_once(db, tmp_path):
    keys = [f"review_{i}" for i in range(8)]
    runtime = Runtime(db)
    for key in keys:
        _deploy(runtime, tmp_path, key=key)
    started: dict[str, int] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def work(name: str) -> None:
        own = Database(db.url)
        try:
            barrier.wait()
            started[name] = start_due(Runtime(own), name, POLICY)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            own.dispose()

    with time_machine.travel(DUE + timedelta(seconds=1), tick=False):
        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    assert sum(started.values()) == len(keys)
    assert sorted(i["process_key"] for i in runtime.instances(limit=100)) == keys
    assert {v.started for v in list_schedules(db)} == {1}

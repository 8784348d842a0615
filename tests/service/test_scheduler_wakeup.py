"""The running scheduler fires a timer at its due time when that comes before the next tick
(engine/scheduler.py `timer_pass`), instead of up to a whole interval late."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from engine import clock
from engine.runtime import Runtime
from engine.scheduler import build_scheduler, scheduler_pass, timer_pass
from tests.conftest import FIXTURES

WAIT = FIXTURES / "scheduler" / "timer_wait.bpmn"  # waits PT1H
AN_HOUR = 3600.0


@pytest.fixture
def waiting(runtime: Runtime, lead):
    clock.reset()
    runtime.deploy_paths([WAIT])
    instance_id = runtime.start("timer_wait", {"reference": "W-1"}, lead).id
    yield runtime, instance_id
    clock.reset()


def _wait_for_status(runtime: Runtime, instance_id: str, status: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while (current := runtime.instance(instance_id).status) != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return current


def test_timer_due_before_the_next_tick_fires_at_its_due_time(waiting):
    runtime, instance_id = waiting
    clock.advance(timedelta(hours=1) - timedelta(seconds=5))  # due in five seconds
    scheduler = build_scheduler(runtime, interval=AN_HOUR)  # the next tick is an hour away
    scheduler.start()
    try:
        assert timer_pass(runtime, scheduler, AN_HOUR) == 0  # not due yet: a wake-up is planned instead
        assert scheduler.get_job("pdcaflow-timer-wakeup") is not None
        assert runtime.instance(instance_id).status == "running"
        assert _wait_for_status(runtime, instance_id, "completed", 60) == "completed"
    finally:
        scheduler.shutdown(wait=True)


def test_no_wake_up_when_the_next_timer_is_beyond_the_interval(waiting):
    runtime, _ = waiting
    scheduler = build_scheduler(runtime, interval=60)
    try:
        assert timer_pass(runtime, scheduler, 60) == 0
        assert scheduler.get_job("pdcaflow-timer-wakeup") is None
    finally:
        scheduler.remove_all_jobs()


def test_housekeeping_pass_leaves_timers_to_the_timer_job(waiting):
    runtime, instance_id = waiting
    clock.advance(timedelta(hours=2))
    assert scheduler_pass(runtime, "w1", fire_timers=False)["timers"] == 0
    assert runtime.instance(instance_id).status == "running"
    assert scheduler_pass(runtime, "w1")["timers"] == 1
    assert runtime.instance(instance_id).status == "completed"
